namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/topk_prune.cu: the token-pruning top-k (one block).</summary>
public sealed unsafe class TopKPrune(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("topk_prune").Function("topk_prune_f32");

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> x, int count, int k, DeviceSpan<int> result)
    {
        Elementwise.RequirePositive(count, "topk_prune_f32", nameof(count));
        if (k < 1 || k > count) throw new ArgumentOutOfRangeException(nameof(k), $"topk_prune_f32: k {k} of {count}");
        x.RequireLength(count, "topk_prune_f32", nameof(x));
        result.RequireLength(k, "topk_prune_f32", nameof(result));
    }

    /// <summary>result[0..k) = the indices of the k largest of x[0..count), ascending, ties to the lower index.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> x, int count, int k, DeviceSpan<int> result)
    {
        Check(x, count, k, result);
        ulong a = x.Pointer, r = result.Pointer;
        int n = count, kk = k;
        void** args = stackalloc void*[] { &a, &n, &kk, &r };
        _f.Launch(LaunchShape.Linear(1, 1024), stream, args);
    }
}
