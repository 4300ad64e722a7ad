using System.Globalization;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Benchmarking;

/// <summary>Size, parameter count and the bytes a decode step reads, from a model's weights.</summary>
internal sealed record ModelSummary(string Description, long Bytes, long Parameters, long DecodeWeightBytes)
{
    public static ModelSummary Of(LlamaWeights w, LlamaConfig c)
    {
        var matrices = w.Layers.SelectMany(l => new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.Gate, l.Up, l.Down }).ToList();
        bool tied = ReferenceEquals(w.Output, w.TokenEmbedding);
        long normBytes = (2L * c.Layers + 1) * c.Dim * sizeof(float);
        long normParams = (2L * c.Layers + 1) * c.Dim;
        long bytes = matrices.Sum(t => t.ByteSize) + w.TokenEmbedding.ByteSize + (tied ? 0 : w.Output.ByteSize) + normBytes;
        long parameters = matrices.Sum(t => (long)t.Rows * t.Cols) + (long)w.TokenEmbedding.Rows * w.TokenEmbedding.Cols
                          + (tied ? 0 : (long)w.Output.Rows * w.Output.Cols) + normParams;
        // One decode step reads every layer matrix and the output projection once, one row of the embedding table, and the norms.
        long decode = matrices.Sum(t => t.ByteSize) + w.Output.ByteSize + w.TokenEmbedding.RowBytes + normBytes;
        // The type that holds most of the layer weights names the file, as llama-bench names it by its file type.
        GgmlType main = matrices.GroupBy(t => t.Type).OrderByDescending(g => g.Sum(t => t.ByteSize)).First().Key;
        return new ModelSummary($"{c.Architecture} {FormatCount(parameters)} {main}", bytes, parameters, decode);
    }

    /// <summary>Bytes one tg step reads on average over <paramref name="generated"/> steps from an empty cache: the
    /// weights, plus keys and values of the attended positions (step p reads p + 1 of them; F16 in the CPU cache).</summary>
    public double DecodeBytesPerToken(LlamaConfig c, int generated)
    {
        double averagePositions = (generated + 1) / 2.0;
        double kv = (double)c.Layers * 2 * c.KvDim * sizeof(short) * averagePositions;
        return DecodeWeightBytes + kv;
    }

    private static string FormatCount(long n) => n switch
    {
        >= 1_000_000_000 => (n / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "B",
        >= 1_000_000 => (n / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1_000 => (n / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "K",
        _ => n.ToString(CultureInfo.InvariantCulture),
    };
}
