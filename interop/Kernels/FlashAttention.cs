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

    /// <summary>Ints per tile of <see cref="LaunchPaged"/>: first row, rows, cache position of the first row, table
    /// offset, tree start (<see cref="Chain"/> for a chain), hidden start and end (cache positions no row of the tile
    /// sees; 0, 0 for none).</summary>
    public const int TileInts = 7;

    /// <summary>The tree start of a chain tile: no position is masked but those past a row's own.</summary>
    public const int Chain = int.MaxValue;

    /// <summary>Ints of one row's ancestor mask in the masks array of <see cref="LaunchPaged"/> (128 bits).</summary>
    public const int MaskInts = 4;

    private const string K = "flash_attention_f16";
    private const string KPaged = "flash_attention_f16_paged";
    private readonly CudaFunction _f = library.Module("flash_attention").Function(K);
    private readonly CudaFunction _paged = library.Module("flash_attention").Function(KPaged);

    /// <summary>Dynamic shared memory for <paramref name="headDim"/>: q tile (floats), K page (floats, rows padded by
    /// one), V page (halves).</summary>
    internal static uint SharedBytes(int headDim) =>
        (uint)(RowsPerBlock * headDim * 4 + PageSize * (headDim + 1) * 4 + PageSize * headDim * 2);

    /// <summary>Checks the arguments of <see cref="Launch"/>. The block table's entries live on the device and
    /// are not checked here: each must be below kPool.Length / (PageSize × kvDim).</summary>
    internal static void Check(DeviceSpan<float> q, DeviceSpan<Half> kPool, DeviceSpan<Half> vPool, DeviceSpan<int> blockTable,
        DeviceSpan<float> output, int rows, int heads, int kvHeads, int headDim, int startPos)
    {
        CheckHeads(K, rows, heads, kvHeads, headDim);
        ArgumentOutOfRangeException.ThrowIfNegative(startPos);
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

    // Shapes both entry points share: the head layout and the kernel's head_dim limits.
    private static void CheckHeads(string kernel, int rows, int heads, int kvHeads, int headDim)
    {
        Elementwise.RequirePositive(rows, kernel, nameof(rows));
        Elementwise.RequirePositive(heads, kernel, nameof(heads));
        Elementwise.RequirePositive(kvHeads, kernel, nameof(kvHeads));
        if (heads % kvHeads != 0) throw new ArgumentException($"kernel '{kernel}': {heads} heads are not a multiple of {kvHeads} key/value heads", nameof(kvHeads));
        if (headDim <= 0 || headDim % 2 != 0 || headDim > MaxHeadDim)
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, $"kernel '{kernel}': head_dim must be even and at most {MaxHeadDim}");
        if (heads > 65535) throw new ArgumentOutOfRangeException(nameof(heads), heads, $"kernel '{kernel}': at most 65535 heads");
    }

    /// <summary>Checks the arguments of <see cref="LaunchPaged"/>. The tiles and tables live on the device and are not
    /// read here: the caller guarantees that the tiles cover rows 0 .. rows - 1, each within one sequence, at most
    /// <see cref="RowsPerBlock"/> rows each, and that every table entry a tile reaches is below the pools' block count.</summary>
    internal static void CheckPaged(DeviceSpan<float> q, DeviceSpan<Half> kPool, DeviceSpan<Half> vPool, DeviceSpan<int> tiles, int tileCount,
        DeviceSpan<int> tables, DeviceSpan<float> output, int rows, int heads, int kvHeads, int headDim, int blockSize)
    {
        CheckHeads(KPaged, rows, heads, kvHeads, headDim);
        Elementwise.RequirePositive(tileCount, KPaged, nameof(tileCount));
        if (tileCount > rows) throw new ArgumentOutOfRangeException(nameof(tileCount), tileCount, $"kernel '{KPaged}': {tileCount} tiles for {rows} rows (each tile has at least one)");
        if (blockSize <= 0 || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, $"kernel '{KPaged}': the block size must be a power of two");
        long block = (long)blockSize * kvHeads * headDim;
        q.RequireLength((long)rows * heads * headDim, KPaged, nameof(q));
        tiles.RequireLength((long)tileCount * TileInts, KPaged, nameof(tiles));
        tables.RequireLength(1, KPaged, nameof(tables));
        kPool.RequireLength(block, KPaged, nameof(kPool));
        vPool.RequireLength(block, KPaged, nameof(vPool));
        if (kPool.Length != vPool.Length) throw new ArgumentException($"kernel '{KPaged}': the K pool holds {kPool.Length} halves, the V pool {vPool.Length}", nameof(vPool));
        if (kPool.Length % block != 0) throw new ArgumentException($"kernel '{KPaged}': the pools hold {kPool.Length} halves, not whole blocks of {block}", nameof(kPool));
        output.RequireLength((long)rows * heads * headDim, KPaged, nameof(output));
    }

    /// <summary>A ragged batch: output (rows, heads × headDim) where each tile (<see cref="TileInts"/> ints: first row,
    /// rows, cache position of the first row, offset of its sequence's block table in <paramref name="tables"/>, tree
    /// start, hidden start and end) holds up to <see cref="RowsPerBlock"/> consecutive rows of one sequence, and its row i, at cache position
    /// p + i, attends to that sequence's positions 0 .. p + i through its block table (blocks of
    /// <paramref name="blockSize"/> positions), except, in a tile with a tree start t, the positions t + j whose bit j
    /// is clear in the row's ancestor mask (<paramref name="masks"/>, <see cref="MaskInts"/> ints per batch row; only
    /// read for tree tiles, so it may be empty when there are none), and the tile's hidden positions. Scores are
    /// q·k · <paramref name="scale"/> (0: 1/√headDim), soft-capped when <paramref name="softCap"/> is positive; with a
    /// <paramref name="window"/> each row sees only the last <paramref name="window"/> positions of its chain.</summary>
    public void LaunchPaged(CudaStream stream, DeviceSpan<float> q, DeviceSpan<Half> kPool, DeviceSpan<Half> vPool, DeviceSpan<int> tiles,
        int tileCount, DeviceSpan<int> tables, DeviceSpan<int> masks, DeviceSpan<float> output, int rows, int heads, int kvHeads, int headDim, int blockSize,
        float scale = 0f, float softCap = 0f, int window = 0)
    {
        CheckPaged(q, kPool, vPool, tiles, tileCount, tables, output, rows, heads, kvHeads, headDim, blockSize);
        if (masks.Pointer != 0) masks.RequireLength((long)rows * MaskInts, KPaged, nameof(masks));
        if (!(scale >= 0) || !float.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, $"kernel '{KPaged}': the scale must be finite and not negative");
        if (!(softCap >= 0) || !float.IsFinite(softCap)) throw new ArgumentOutOfRangeException(nameof(softCap), softCap, $"kernel '{KPaged}': the soft cap must be finite and not negative");
        ArgumentOutOfRangeException.ThrowIfNegative(window);
        ulong pq = q.Pointer, pk = kPool.Pointer, pv = vPool.Pointer, pt = tiles.Pointer, pb = tables.Pointer, pm = masks.Pointer, po = output.Pointer;
        int h = heads, kvh = kvHeads, d = headDim, shift = System.Numerics.BitOperations.Log2((uint)blockSize), w = window;
        float sc = scale > 0 ? scale : 1.0f / MathF.Sqrt(headDim), cap = softCap;
        void** args = stackalloc void*[] { &pq, &pk, &pv, &pt, &pb, &pm, &po, &h, &kvh, &d, &shift, &sc, &cap, &w };
        _paged.Launch(new LaunchShape((uint)tileCount, (uint)heads, 1, 128, 1, 1, SharedBytes(headDim)), stream, args);
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
