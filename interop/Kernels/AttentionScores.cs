namespace Tessera.Interop.Kernels;

/// <summary>
/// Launcher of kernels/attention_scores.cu: for the scored rows of a ragged step, what each cached position of their
/// sequence receives (the attention probability, or Keyformer's Gumbel softmax), summed over the rows and the query
/// heads and added to a per-sequence accumulator. The layout (see <see cref="SequenceInts"/>) names the scored
/// sequences; positions, tables and masks are the flash attention layout's (<see cref="FlashAttention"/>).
/// </summary>
public sealed unsafe class AttentionScores(KernelLibrary library)
{
    /// <summary>Ints of one scored sequence's descriptor: batch row of its first scored row, scored rows, cache
    /// position of that row, block table offset, tree start (<see cref="FlashAttention.Chain"/> for a chain), hidden
    /// start, hidden end, accumulator offset, positions, kind (0 probability, 1 Gumbel), 1/τ as float bits, seed low
    /// and high words, index of its first scored row among all scored rows. The layout is these descriptors, then
    /// one int per scored row: its sequence's descriptor index.</summary>
    public const int SequenceInts = 14;

    private const int HeadsThreads = 128, ReduceThreads = 256;
    private readonly CudaFunction _lse = library.Module("attention_scores").Function("attention_scores_lse");
    private readonly CudaFunction _heads = library.Module("attention_scores").Function("attention_scores_heads");
    private readonly CudaFunction _reduce = library.Module("attention_scores").Function("attention_scores_reduce");

    /// <summary>Checks the arguments of <see cref="Launch"/> that live on the host.</summary>
    internal static void Check(DeviceSpan<float> q, int batchRows, DeviceSpan<int> layout, int sequences, int scoredRows, int longest,
        DeviceSpan<float> lse, DeviceSpan<float> part, DeviceSpan<float> acc, int total, int heads, int kvHeads, int headDim, int blockSize)
    {
        const string K = "attention_scores";
        Elementwise.RequirePositive(sequences, K, nameof(sequences));
        Elementwise.RequirePositive(scoredRows, K, nameof(scoredRows));
        Elementwise.RequirePositive(longest, K, nameof(longest));
        Elementwise.RequirePositive(total, K, nameof(total));
        Elementwise.RequirePositive(heads, K, nameof(heads));
        Elementwise.RequirePositive(kvHeads, K, nameof(kvHeads));
        if (heads % kvHeads != 0) throw new ArgumentException($"kernel '{K}': {heads} heads are not a multiple of {kvHeads} key/value heads", nameof(kvHeads));
        if (heads > 65535) throw new ArgumentOutOfRangeException(nameof(heads), heads, $"kernel '{K}': at most 65535 heads");
        if (sequences > 65535) throw new ArgumentOutOfRangeException(nameof(sequences), sequences, $"kernel '{K}': at most 65535 scored sequences");
        Elementwise.RequirePositive(headDim, K, nameof(headDim));
        if (blockSize <= 0 || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, $"kernel '{K}': the block size must be a power of two");
        layout.RequireLength((long)sequences * SequenceInts + scoredRows, K, nameof(layout));
        lse.RequireLength((long)scoredRows * heads, K, nameof(lse));
        part.RequireLength((long)total * heads, K, nameof(part));
        acc.RequireLength(total, K, nameof(acc));
        Elementwise.RequirePositive(batchRows, K, nameof(batchRows));
        if (scoredRows > batchRows) throw new ArgumentOutOfRangeException(nameof(scoredRows), scoredRows, $"kernel '{K}': {scoredRows} scored rows of a {batchRows}-row batch");
        q.RequireLength((long)batchRows * heads * headDim, K, nameof(q));
    }

    /// <summary>Adds the scores of one layer to <paramref name="acc"/> (<paramref name="total"/> floats: every scored
    /// sequence's positions at its offset), or writes them there when <paramref name="first"/> (the step's first
    /// layer: no clearing pass). <paramref name="lse"/> (scored rows × heads) and <paramref name="part"/> (heads ×
    /// total) are scratch; <paramref name="longest"/> is the most positions any scored sequence has; q holds the
    /// batch's <paramref name="batchRows"/> rows.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> q, int batchRows, DeviceSpan<Half> kPool, DeviceSpan<int> tables, DeviceSpan<int> masks,
        DeviceSpan<int> positions, DeviceSpan<int> layout, int sequences, int scoredRows, int longest, DeviceSpan<float> lse,
        DeviceSpan<float> part, DeviceSpan<float> acc, int total, bool first, int heads, int kvHeads, int headDim, int blockSize, int layer)
    {
        Check(q, batchRows, layout, sequences, scoredRows, longest, lse, part, acc, total, heads, kvHeads, headDim, blockSize);
        ulong pq = q.Pointer, pk = kPool.Pointer, pt = tables.Pointer, pm = masks.Pointer, pp = positions.Pointer, pl = layout.Pointer;
        ulong plse = lse.Pointer, ppart = part.Pointer, pacc = acc.Pointer;
        int seqs = sequences, n = total, h = heads, kvh = kvHeads, d = headDim, l = layer, f = first ? 1 : 0;
        int shift = System.Numerics.BitOperations.Log2((uint)blockSize);
        float scale = 1.0f / MathF.Sqrt(headDim);
        void** a1 = stackalloc void*[] { &pq, &pk, &pt, &pm, &pp, &pl, &seqs, &plse, &h, &kvh, &d, &shift, &scale, &l };
        _lse.Launch(new LaunchShape((uint)scoredRows, (uint)heads, 1, 32, 1, 1), stream, a1);
        void** a2 = stackalloc void*[] { &pq, &pk, &pt, &pm, &pp, &pl, &plse, &ppart, &n, &h, &kvh, &d, &shift, &scale, &l };
        _heads.Launch(new LaunchShape((uint)((longest + HeadsThreads - 1) / HeadsThreads), (uint)sequences, (uint)heads, HeadsThreads, 1, 1), stream, a2);
        void** a3 = stackalloc void*[] { &ppart, &pacc, &n, &h, &f };
        _reduce.Launch(LaunchShape.Linear((uint)((total + ReduceThreads - 1) / ReduceThreads), ReduceThreads), stream, a3);
    }
}
