using Tessera.Formats;
using Tessera.Formats.Gguf;
using Tessera.Quantization;

namespace Tessera.Model;

/// <summary>Weights of a GGUF file, in place in its memory mapping.</summary>
public sealed unsafe class GgufWeightSource : IWeightSource
{
    private static readonly HashSet<GgmlType> Computable =
    [
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0,
        GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_NL,
    ];

    /// <summary>Wraps an open file; disposing the source disposes the file.</summary>
    public GgufWeightSource(GgufFile file) => File = file;

    /// <summary>The underlying file.</summary>
    public GgufFile File { get; }

    /// <inheritdoc/>
    public string Path => File.Path;

    /// <inheritdoc/>
    public WeightTensor? Find(string name, int rows, int cols)
    {
        var t = File.FindTensor(name);
        if (t == null) return null;
        bool matches = t.Dimensions.Count switch
        {
            1 => rows == 1 && t.Dimensions[0] == cols,
            2 => t.Dimensions[0] == cols && t.Dimensions[1] == rows,
            _ => false,
        };
        if (!matches)
            throw new ModelFormatException(Path,
                $"tensor '{name}' has shape {t.ShapeText}, but the metadata implies [{rows}, {cols}] (architecture {(File.TryGetString("general.architecture", out string a) ? a : "?")})");
        if (!Computable.Contains(t.Type))
            throw new ModelFormatException(Path, $"tensor '{name}' has type {t.Type}, which Tessera does not support");
        return new WeightTensor(name, t.Type, rows, cols, t.Data, t.ByteSize);
    }

    /// <inheritdoc/>
    public void Dispose() => File.Dispose();
}
