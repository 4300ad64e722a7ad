namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/argmax.cu: greedy token on the device (one block).</summary>
public sealed unsafe class Argmax(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("argmax").Function("argmax_f32");

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> x, int count, DeviceSpan<int> result)
    {
        Elementwise.RequirePositive(count, "argmax_f32", nameof(count));
        x.RequireLength(count, "argmax_f32", nameof(x));
        result.RequireLength(1, "argmax_f32", nameof(result));
    }

    /// <summary>result[0] = the index of the largest of x[0..count), the lowest on ties.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> x, int count, DeviceSpan<int> result)
    {
        Check(x, count, result);
        ulong a = x.Pointer, r = result.Pointer;
        int n = count;
        void** args = stackalloc void*[] { &a, &n, &r };
        _f.Launch(LaunchShape.Linear(1, 1024), stream, args);
    }
}
