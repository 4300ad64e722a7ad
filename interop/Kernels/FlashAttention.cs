namespace Tessera.Interop.Kernels;

/// <summary>
/// Launcher of kernels/flash_attention.cu: causal grouped-query attention for several query rows (prefill) over a
/// paged F16 cache. Paged layout: per layer, K and V pools of [blocks][<see cref="PageSize"/>][kvDim] halves; the
/// block table maps position p to pool block table[p / PageSize], slot p % PageSize.
/// </summary>
public sealed unsafe class FlashAttention(KernelLibrary library)
{
    /// <summary>Positions per KV block (page) of the paged layout.</summary>
    public const int PageSize = 16;

    /// <summary>Query rows per thread block (the kernel's FA_BQ).</summary>
    internal const int RowsPerBlock = 16;

    /// <summary>Largest head dimension (the kernel's FA_MAXD).</summary>
    public const int MaxHeadDim = 256;

    private const string K = "flash_attention_f16";
    private readonly CudaFunction _f = library.Module("flash_attention").Function(K);

    /// <summary>Dynamic shared memory for <paramref name="headDim"/>: q tile (floats), K page (floats, rows padded by
    /// one), V page (halves).</summary>
    internal static uint SharedBytes(int headDim) =>
        (uint)(RowsPerBlock * headDim * 4 + PageSize * (headDim + 1) * 4 + PageSize * headDim * 2);

    /// <summary>Checks the arguments of <see cref="Launch"/>. The block table's entries live on the device and
    /// are not checked here: each must be below kPool.Length / (PageSize × kvDim).</summary>
    internal static void Check(DeviceSpan<float> q, DeviceSpan<Half> kPool, DeviceSpan<Half> vPool, DeviceSpan<int> blockTable,
        DeviceSpan<float> output, int rows, int heads, int kvHeads, int headDim, int startPos)
    {
        Elementwise.RequirePositive(rows, K, nameof(rows));
        Elementwise.RequirePositive(heads, K, nameof(heads));
        Elementwise.RequirePositive(kvHeads, K, nameof(kvHeads));
        if (heads % kvHeads != 0) throw new ArgumentException($"kernel '{K}': {heads} heads are not a multiple of {kvHeads} key/value heads", nameof(kvHeads));
        if (headDim <= 0 || headDim % 2 != 0 || headDim > MaxHeadDim)
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, $"kernel '{K}': head_dim must be even and at most {MaxHeadDim}");
        ArgumentOutOfRangeException.ThrowIfNegative(startPos);
        if (heads > 65535) throw new ArgumentOutOfRangeException(nameof(heads), heads, $"kernel '{K}': at most 65535 heads");
        long lastPos = (long)startPos + rows - 1;
        if (lastPos > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(rows), rows, $"kernel '{K}': positions past int range");
        long pages = lastPos / PageSize + 1, page = (long)PageSize * kvHeads * headDim;
        q.RequireLength((long)rows * heads * headDim, K, nameof(q));
        blockTable.RequireLength(pages, K, nameof(blockTable));
        kPool.RequireLength(page, K, nameof(kPool));
        vPool.RequireLength(page, K, nameof(vPool));
        if (kPool.Length != vPool.Length) throw new ArgumentException($"kernel '{K}': the K pool holds {kPool.Length} halves, the V pool {vPool.Length}", nameof(vPool));
        output.RequireLength((long)rows * heads * headDim, K, nameof(output));
    }

    /// <summary>output (rows, heads × headDim) for queries q at positions startPos .. startPos + rows - 1 over the
    /// cached positions 0 .. their own, found through <paramref name="blockTable"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> q, DeviceSpan<Half> kPool, DeviceSpan<Half> vPool, DeviceSpan<int> blockTable,
        DeviceSpan<float> output, int rows, int heads, int kvHeads, int headDim, int startPos)
    {
        Check(q, kPool, vPool, blockTable, output, rows, heads, kvHeads, headDim, startPos);
        ulong pq = q.Pointer, pk = kPool.Pointer, pv = vPool.Pointer, pt = blockTable.Pointer, po = output.Pointer;
        int r = rows, h = heads, kvh = kvHeads, d = headDim, s = startPos;
        float scale = 1.0f / MathF.Sqrt(headDim);
        void** args = stackalloc void*[] { &pq, &pk, &pv, &pt, &po, &r, &h, &kvh, &d, &s, &scale };
        uint blocks = (uint)((rows + RowsPerBlock - 1) / RowsPerBlock);
        _f.Launch(new LaunchShape(blocks, (uint)heads, 1, 128, 1, 1, SharedBytes(headDim)), stream, args);
    }
}
