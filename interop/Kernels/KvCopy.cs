namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/kv_copy.cu: moves rows of a layer's paged K and V pools from slot to slot, pair after
/// pair (compaction of an accepted draft path, copy-on-write of a shared block).</summary>
public sealed unsafe class KvCopy(KernelLibrary library)
{
    private const string K = "kv_copy_f16";
    private readonly CudaFunction _f = library.Module("kv_copy").Function(K);

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<Half> kPool, DeviceSpan<Half> vPool, DeviceSpan<int> from, DeviceSpan<int> to,
        int pairs, int kvDim, int poolSlots)
    {
        Elementwise.RequirePositive(pairs, K, nameof(pairs));
        Elementwise.RequirePositive(kvDim, K, nameof(kvDim));
        Elementwise.RequirePositive(poolSlots, K, nameof(poolSlots));
        from.RequireLength(pairs, K, nameof(from));
        to.RequireLength(pairs, K, nameof(to));
        kPool.RequireLength((long)poolSlots * kvDim, K, nameof(kPool));
        vPool.RequireLength((long)poolSlots * kvDim, K, nameof(vPool));
    }

    /// <summary>For i = 0 .. pairs - 1 in order: pool[to[i]] = pool[from[i]] (kvDim halves, K and V). The slots live
    /// on the device and are not read here: the caller guarantees each is below <paramref name="poolSlots"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<Half> kPool, DeviceSpan<Half> vPool, DeviceSpan<int> from, DeviceSpan<int> to,
        int pairs, int kvDim, int poolSlots)
    {
        Check(kPool, vPool, from, to, pairs, kvDim, poolSlots);
        ulong a = kPool.Pointer, b = vPool.Pointer, f = from.Pointer, t = to.Pointer;
        int n = pairs, kd = kvDim;
        void** args = stackalloc void*[] { &a, &b, &f, &t, &n, &kd };
        _f.Launch(LaunchShape.Linear(1, 256), stream, args);
    }
}
