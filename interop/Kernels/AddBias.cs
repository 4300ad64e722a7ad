namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/add_bias.cu: x (rows, cols) += b (cols) in every row.</summary>
public sealed unsafe class AddBias(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("add_bias").Function("add_bias_f32");

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> x, DeviceSpan<float> bias, int rows, int cols)
    {
        Elementwise.RequirePositive(rows, "add_bias_f32", nameof(rows));
        Elementwise.RequirePositive(cols, "add_bias_f32", nameof(cols));
        x.RequireLength((long)rows * cols, "add_bias_f32", nameof(x));
        bias.RequireLength(cols, "add_bias_f32", nameof(bias));
    }

    /// <summary>x[r, c] += bias[c] for r &lt; rows, c &lt; cols.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> x, DeviceSpan<float> bias, int rows, int cols)
    {
        Check(x, bias, rows, cols);
        ulong px = x.Pointer, pb = bias.Pointer;
        int c = cols;
        long n = (long)rows * cols;
        void** args = stackalloc void*[] { &px, &pb, &c, &n };
        _f.Launch(LaunchShape.Linear(Elementwise.Blocks(n), Elementwise.Threads), stream, args);
    }
}
