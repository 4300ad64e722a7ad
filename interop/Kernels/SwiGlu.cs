namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/swiglu.cu: gate = silu(gate) * up.</summary>
public sealed unsafe class SwiGlu(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("swiglu").Function("swiglu_f32");

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> gate, DeviceSpan<float> up, int count)
    {
        Elementwise.RequirePositive(count, "swiglu_f32", nameof(count));
        gate.RequireLength(count, "swiglu_f32", nameof(gate));
        up.RequireLength(count, "swiglu_f32", nameof(up));
    }

    /// <summary>gate[i] = gate[i] / (1 + exp(-gate[i])) * up[i] for i below <paramref name="count"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> gate, DeviceSpan<float> up, int count)
    {
        Check(gate, up, count);
        ulong g = gate.Pointer, u = up.Pointer;
        int n = count;
        void** args = stackalloc void*[] { &g, &u, &n };
        _f.Launch(LaunchShape.Linear(Elementwise.Blocks(n), Elementwise.Threads), stream, args);
    }
}
