namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/scale.cu: x *= factor, in place.</summary>
public sealed class Scale(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("scale").Function("scale_f32");

    /// <summary>x *= factor for the first <paramref name="count"/> elements of <paramref name="x"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> x, float factor, int count) =>
        Elementwise.LaunchInPlace(_f, "scale_f32", stream, x, factor, nameof(factor), count);
}
