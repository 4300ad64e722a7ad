namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/soft_cap.cu: x = cap · tanh(x / cap), in place.</summary>
public sealed unsafe class SoftCap(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("soft_cap").Function("soft_cap_f32");

    /// <summary>x = cap · tanh(x / cap) for the first <paramref name="count"/> elements of <paramref name="x"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> x, float cap, int count)
    {
        Elementwise.RequirePositive(count, "soft_cap_f32", nameof(count));
        x.RequireLength(count, "soft_cap_f32", nameof(x));
        if (!float.IsFinite(cap) || cap == 0) throw new ArgumentOutOfRangeException(nameof(cap), cap, "kernel 'soft_cap_f32': cap must be finite and non-zero");
        ulong p = x.Pointer;
        float a = cap;
        int n = count;
        void** args = stackalloc void*[] { &p, &a, &n };
        _f.Launch(LaunchShape.Linear(Elementwise.Blocks(n), Elementwise.Threads), stream, args);
    }
}
