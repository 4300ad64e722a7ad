namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/soft_cap.cu: x = cap · tanh(x / cap), in place.</summary>
public sealed class SoftCap(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("soft_cap").Function("soft_cap_f32");

    /// <summary>x = cap · tanh(x / cap) for the first <paramref name="count"/> elements of <paramref name="x"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> x, float cap, int count) =>
        Elementwise.LaunchInPlace(_f, "soft_cap_f32", stream, x, cap, nameof(cap), count);
}
