namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/gemm.cu: y (tokens, rows) = x (tokens, cols) · Wᵀ on tensor cores (mma.sync
/// m16n8k16, float32 accumulation) for F16, BF16 and the quantized formats (dequantized to F16 tiles). Used for
/// prefill (more than one token); <see cref="Gemv"/> serves single tokens and F32 weights.</summary>
public sealed unsafe class Gemm(KernelLibrary library)
{
    /// <summary>Weight rows per block (the kernel's GEMM_BM).</summary>
    internal const int TileRows = 64;

    /// <summary>Tokens per block (the kernel's GEMM_BN).</summary>
    internal const int TileTokens = 64;

    private readonly KernelLibrary _library = library;
    private readonly Dictionary<WeightFormat, CudaFunction> _f = [];

    /// <summary>Whether a tensor-core kernel exists for <paramref name="format"/> (all but F32, which keeps full
    /// precision through <see cref="Gemv"/>).</summary>
    public static bool Supports(WeightFormat format) => format != WeightFormat.F32;

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(WeightFormat format, DeviceSpan<byte> w, int rows, int cols, DeviceSpan<float> x, DeviceSpan<float> y, int tokens)
    {
        string k = "gemm_" + WeightFormats.Suffix(format);
        if (!Supports(format)) throw new ArgumentException($"kernel '{k}': no tensor-core kernel for {format} weights (use Gemv)", nameof(format));
        Elementwise.RequirePositive(rows, k, nameof(rows));
        Elementwise.RequirePositive(tokens, k, nameof(tokens));
        long gridX = (rows + (long)TileRows - 1) / TileRows, gridY = (tokens + (long)TileTokens - 1) / TileTokens;
        if (gridY > 65535) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, $"kernel '{k}': at most {65535 * TileTokens} tokens per launch");
        if (gridX > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(rows), rows, $"kernel '{k}': too many rows");
        w.RequireLength(rows * WeightFormats.RowBytes(format, cols), k, nameof(w));
        // 16-byte loads of dense rows; 2-byte (Q8_0, Q4_0, Q6_K) and 4-byte (Q4_K) field loads of packed blocks.
        w.RequireAlignment(format switch { WeightFormat.Q8_0 or WeightFormat.Q4_0 or WeightFormat.Q6_K => 2, WeightFormat.Q4_K => 4, _ => 16 }, k, nameof(w));
        x.RequireAlignment(16, k, nameof(x));
        x.RequireLength((long)tokens * cols, k, nameof(x));
        y.RequireLength((long)tokens * rows, k, nameof(y));
    }

    /// <summary>y[t, r] = Σ_c W[r, c] · x[t, c] for t &lt; <paramref name="tokens"/>.</summary>
    public void Launch(CudaStream stream, WeightFormat format, DeviceSpan<byte> w, int rows, int cols, DeviceSpan<float> x, DeviceSpan<float> y, int tokens)
    {
        Check(format, w, rows, cols, x, y, tokens);
        if (!_f.TryGetValue(format, out var f))
            _f[format] = f = _library.Module("gemm").Function("gemm_" + WeightFormats.Suffix(format));
        ulong a = w.Pointer, b = x.Pointer, c = y.Pointer;
        int r = rows, n = cols, t = tokens;
        long rowBytes = WeightFormats.RowBytes(format, cols);
        void** args = stackalloc void*[] { &a, &b, &c, &r, &n, &t, &rowBytes };
        var shape = new LaunchShape((uint)((rows + TileRows - 1) / TileRows), (uint)((tokens + TileTokens - 1) / TileTokens), 1, 128, 1, 1);
        f.Launch(shape, stream, args);
    }
}
