namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/add.cu: acc += x.</summary>
public sealed unsafe class Add(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("add").Function("add_f32");

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> acc, DeviceSpan<float> x, int count)
    {
        Elementwise.RequirePositive(count, "add_f32", nameof(count));
        acc.RequireLength(count, "add_f32", nameof(acc));
        x.RequireLength(count, "add_f32", nameof(x));
    }

    /// <summary>acc[0..count) += x[0..count).</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> acc, DeviceSpan<float> x, int count)
    {
        Check(acc, x, count);
        ulong a = acc.Pointer, b = x.Pointer;
        int n = count;
        void** args = stackalloc void*[] { &a, &b, &n };
        _f.Launch(LaunchShape.Linear(Elementwise.Blocks(n), Elementwise.Threads), stream, args);
    }
}
