namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/embed.cu: rows of an embedding table gathered as float32.</summary>
public sealed unsafe class Embed(KernelLibrary library)
{
    private readonly KernelLibrary _library = library;
    private readonly Dictionary<WeightFormat, CudaFunction> _f = [];

    /// <summary>Whether an embedding table in <paramref name="format"/> can be gathered on the device.</summary>
    public static bool Supports(WeightFormat format) =>
        format is WeightFormat.F32 or WeightFormat.F16 or WeightFormat.BF16 or WeightFormat.Q8_0;

    /// <summary>Checks the arguments of <see cref="Launch"/> (token values are checked on the host by the caller).</summary>
    internal static void Check(WeightFormat format, DeviceSpan<byte> table, int tableRows, int dim, DeviceSpan<int> tokens, int count, DeviceSpan<float> output)
    {
        const string K = "embed";
        if (!Supports(format)) throw new NotSupportedException($"kernel '{K}': no device gather for {format} tables");
        Elementwise.RequirePositive(tableRows, K, nameof(tableRows));
        Elementwise.RequirePositive(count, K, nameof(count));
        if (count > 65535) throw new ArgumentOutOfRangeException(nameof(count), count, $"kernel '{K}': at most 65535 tokens per launch");
        table.RequireLength(tableRows * WeightFormats.RowBytes(format, dim), K, nameof(table));
        table.RequireAlignment(4, K, nameof(table));
        tokens.RequireLength(count, K, nameof(tokens));
        output.RequireLength((long)count * dim, K, nameof(output));
    }

    /// <summary>output (count, dim) = table rows tokens[0..count).</summary>
    public void Launch(CudaStream stream, WeightFormat format, DeviceSpan<byte> table, int tableRows, int dim,
        DeviceSpan<int> tokens, int count, DeviceSpan<float> output)
    {
        Check(format, table, tableRows, dim, tokens, count, output);
        if (!_f.TryGetValue(format, out var f))
            _f[format] = f = _library.Module("embed").Function("embed_" + WeightFormats.Suffix(format));
        ulong t = table.Pointer, ids = tokens.Pointer, o = output.Pointer;
        int d = dim;
        void** args = stackalloc void*[] { &t, &ids, &o, &d };
        f.Launch(new LaunchShape(Elementwise.Blocks(dim), (uint)count, 1, Elementwise.Threads, 1, 1), stream, args);
    }
}
