namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/geglu.cu: gate = gelu_tanh(gate) * up, with llama.cpp's F16 rounding of the GELU.</summary>
public sealed unsafe class GeGlu(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("geglu").Function("geglu_f32");

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> gate, DeviceSpan<float> up, int count)
    {
        Elementwise.RequirePositive(count, "geglu_f32", nameof(count));
        gate.RequireLength(count, "geglu_f32", nameof(gate));
        up.RequireLength(count, "geglu_f32", nameof(up));
    }

    /// <summary>gate[i] = gelu_tanh(gate[i]) * up[i] for i below <paramref name="count"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> gate, DeviceSpan<float> up, int count)
    {
        Check(gate, up, count);
        ulong g = gate.Pointer, u = up.Pointer;
        int n = count;
        void** args = stackalloc void*[] { &g, &u, &n };
        _f.Launch(LaunchShape.Linear(Elementwise.Blocks(n), Elementwise.Threads), stream, args);
    }
}
