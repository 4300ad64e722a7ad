namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/gemv.cu: y (batch, rows) = x (batch, cols) · Wᵀ with W in its file format,
/// one warp per weight row.</summary>
public sealed unsafe class Gemv(KernelLibrary library)
{
    /// <summary>Warps (weight rows) per block.</summary>
    internal const int RowsPerBlock = 4;

    private readonly KernelLibrary _library = library;
    private readonly Dictionary<WeightFormat, CudaFunction> _f = [];

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(WeightFormat format, DeviceSpan<byte> w, int rows, int cols, DeviceSpan<float> x, DeviceSpan<float> y, int batch)
    {
        string k = "gemv_" + WeightFormats.Suffix(format);
        Elementwise.RequirePositive(rows, k, nameof(rows));
        Elementwise.RequirePositive(batch, k, nameof(batch));
        if (batch > 65535) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"kernel '{k}': at most 65535 rows of x per launch");
        w.RequireLength(rows * WeightFormats.RowBytes(format, cols), k, nameof(w));
        // Vector loads: 16 bytes of weights (dense types), 4 (Q4_K); float4 loads of x.
        w.RequireAlignment(format switch { WeightFormat.Q8_0 or WeightFormat.Q4_0 or WeightFormat.Q6_K => 2, WeightFormat.Q4_K => 4, _ => 16 }, k, nameof(w));
        x.RequireAlignment(16, k, nameof(x));
        x.RequireLength((long)batch * cols, k, nameof(x));
        y.RequireLength((long)batch * rows, k, nameof(y));
    }

    /// <summary>y[b, r] = Σ_c W[r, c] · x[b, c].</summary>
    public void Launch(CudaStream stream, WeightFormat format, DeviceSpan<byte> w, int rows, int cols, DeviceSpan<float> x, DeviceSpan<float> y, int batch)
    {
        Check(format, w, rows, cols, x, y, batch);
        if (!_f.TryGetValue(format, out var f))
            _f[format] = f = _library.Module("gemv").Function("gemv_" + WeightFormats.Suffix(format));
        ulong a = w.Pointer, b = x.Pointer, c = y.Pointer;
        int r = rows, n = cols;
        void** args = stackalloc void*[] { &a, &b, &c, &r, &n };
        uint blocks = (uint)((rows + RowsPerBlock - 1) / RowsPerBlock);
        f.Launch(new LaunchShape(blocks, (uint)batch, 1, 32 * RowsPerBlock, 1, 1), stream, args);
    }
}
