namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/scale.cu: x *= factor, in place.</summary>
public sealed unsafe class Scale(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("scale").Function("scale_f32");

    /// <summary>x *= factor for the first <paramref name="count"/> elements of <paramref name="x"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> x, float factor, int count)
    {
        Elementwise.RequirePositive(count, "scale_f32", nameof(count));
        x.RequireLength(count, "scale_f32", nameof(x));
        if (!float.IsFinite(factor) || factor == 0) throw new ArgumentOutOfRangeException(nameof(factor), factor, "kernel 'scale_f32': factor must be finite and non-zero");
        ulong p = x.Pointer;
        float a = factor;
        int n = count;
        void** args = stackalloc void*[] { &p, &a, &n };
        _f.Launch(LaunchShape.Linear(Elementwise.Blocks(n), Elementwise.Threads), stream, args);
    }
}
