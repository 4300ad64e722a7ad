namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/rmsnorm.cu: one block per row.</summary>
public sealed unsafe class RmsNorm(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("rmsnorm").Function("rmsnorm_f32");

    /// <summary>Threads per block (a warp multiple): wider rows get more threads, each summing a few elements.</summary>
    internal static uint Threads(int dim) => dim >= 4096 ? 1024u : dim >= 1024 ? 256u : 128u;

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> x, DeviceSpan<float> weight, DeviceSpan<float> y, int rows, int dim, float eps)
    {
        const string K = "rmsnorm_f32";
        Elementwise.RequirePositive(rows, K, nameof(rows));
        Elementwise.RequirePositive(dim, K, nameof(dim));
        if (!(eps >= 0) || float.IsInfinity(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"kernel '{K}': eps must be finite and non-negative");
        weight.RequireLength(dim, K, nameof(weight));
        x.RequireLength((long)rows * dim, K, nameof(x));
        y.RequireLength((long)rows * dim, K, nameof(y));
    }

    /// <summary>y (rows, dim) = x / rms(x) * weight, row by row.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> x, DeviceSpan<float> weight, DeviceSpan<float> y, int rows, int dim, float eps)
    {
        Check(x, weight, y, rows, dim, eps);
        ulong a = x.Pointer, w = weight.Pointer, b = y.Pointer;
        int d = dim;
        float e = eps;
        void** args = stackalloc void*[] { &a, &w, &b, &d, &e };
        _f.Launch(LaunchShape.Linear((uint)rows, Threads(dim)), stream, args);
    }
}
