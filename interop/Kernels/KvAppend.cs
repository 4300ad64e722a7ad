namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/kv_append.cu: k and v (rows × kvDim) rounded to F16 into a layer's cache, at a
/// position of a contiguous cache or at each row's slot of a paged pool.</summary>
public sealed unsafe class KvAppend(KernelLibrary library)
{
    private const string K = "kv_append_f16";
    private const string KPaged = "kv_append_f16_paged";
    private readonly CudaFunction _f = library.Module("kv_append").Function(K);
    private readonly CudaFunction _paged = library.Module("kv_append").Function(KPaged);

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> k, DeviceSpan<float> v, DeviceSpan<Half> kCache, DeviceSpan<Half> vCache,
        int rows, int kvDim, int startPos)
    {
        Elementwise.RequirePositive(rows, K, nameof(rows));
        Elementwise.RequirePositive(kvDim, K, nameof(kvDim));
        ArgumentOutOfRangeException.ThrowIfNegative(startPos);
        long count = (long)rows * kvDim, end = ((long)startPos + rows) * kvDim;
        if (count > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(rows), rows, $"kernel '{K}': too many values per launch");
        k.RequireLength(count, K, nameof(k));
        v.RequireLength(count, K, nameof(v));
        kCache.RequireLength(end, K, nameof(kCache));
        vCache.RequireLength(end, K, nameof(vCache));
    }

    /// <summary>kCache[(pos + r) × kvDim + j] = (half)k[r × kvDim + j], the same for v, where pos is
    /// <paramref name="startPos"/>, or the int at <paramref name="position"/> when that view is given (a captured
    /// graph; the caller guarantees it equals startPos, which the cache bounds are checked with).</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> k, DeviceSpan<float> v, DeviceSpan<Half> kCache, DeviceSpan<Half> vCache,
        int rows, int kvDim, int startPos, DeviceSpan<int> position = default)
    {
        Check(k, v, kCache, vCache, rows, kvDim, startPos);
        if (position.Pointer != 0) position.RequireLength(1, K, nameof(position));
        ulong a = k.Pointer, b = v.Pointer, c = kCache.Pointer, d = vCache.Pointer, p = position.Pointer;
        int n = rows * kvDim, kd = kvDim, s = startPos;
        void** args = stackalloc void*[] { &a, &b, &c, &d, &n, &kd, &s, &p };
        _f.Launch(LaunchShape.Linear(Elementwise.Blocks(n), Elementwise.Threads), stream, args);
    }

    /// <summary>Checks the arguments of <see cref="LaunchPaged"/>.</summary>
    internal static void CheckPaged(DeviceSpan<float> k, DeviceSpan<float> v, DeviceSpan<Half> kPool, DeviceSpan<Half> vPool,
        DeviceSpan<int> rowSlot, int rows, int kvDim, int poolSlots)
    {
        Elementwise.RequirePositive(rows, KPaged, nameof(rows));
        Elementwise.RequirePositive(kvDim, KPaged, nameof(kvDim));
        Elementwise.RequirePositive(poolSlots, KPaged, nameof(poolSlots));
        long count = (long)rows * kvDim, pool = (long)poolSlots * kvDim;
        if (count > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(rows), rows, $"kernel '{KPaged}': too many values per launch");
        k.RequireLength(count, KPaged, nameof(k));
        v.RequireLength(count, KPaged, nameof(v));
        rowSlot.RequireLength(rows, KPaged, nameof(rowSlot));
        kPool.RequireLength(pool, KPaged, nameof(kPool));
        vPool.RequireLength(pool, KPaged, nameof(vPool));
    }

    /// <summary>Paged pools: kPool[rowSlot[r] × kvDim + j] = (half)k[r × kvDim + j], the same for v. The slots live on
    /// the device and are not read here: the caller guarantees each is below <paramref name="poolSlots"/>, which the
    /// pools are checked to hold.</summary>
    public void LaunchPaged(CudaStream stream, DeviceSpan<float> k, DeviceSpan<float> v, DeviceSpan<Half> kPool, DeviceSpan<Half> vPool,
        DeviceSpan<int> rowSlot, int rows, int kvDim, int poolSlots)
    {
        CheckPaged(k, v, kPool, vPool, rowSlot, rows, kvDim, poolSlots);
        ulong a = k.Pointer, b = v.Pointer, c = kPool.Pointer, d = vPool.Pointer, sl = rowSlot.Pointer;
        int n = rows * kvDim, kd = kvDim;
        void** args = stackalloc void*[] { &a, &b, &c, &d, &n, &kd, &sl };
        _paged.Launch(LaunchShape.Linear(Elementwise.Blocks(n), Elementwise.Threads), stream, args);
    }
}
