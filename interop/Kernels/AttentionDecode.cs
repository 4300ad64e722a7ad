namespace Tessera.Interop.Kernels;

/// <summary>
/// Launcher of kernels/attention_decode.cu: causal GQA attention over an F16 cache, split over chunks of
/// <see cref="Chunk"/> positions (one block each) and combined by a second kernel.
/// </summary>
public sealed unsafe class AttentionDecode(KernelLibrary library)
{
    /// <summary>Positions per split.</summary>
    internal const int Chunk = 256;

    private const uint Threads = 128;
    private readonly CudaFunction _partial = library.Module("attention_decode").Function("attention_decode_f16_partial");
    private readonly CudaFunction _combine = library.Module("attention_decode").Function("attention_decode_f16_combine");

    /// <summary>Number of splits for queries up to position <paramref name="lastPos"/>.</summary>
    public static int Splits(int lastPos) => lastPos / Chunk + 1;

    /// <summary>Floats of scratch <see cref="Launch"/> needs: partial outputs, then (max, sum) pairs.</summary>
    public static long ScratchFloats(int rows, int heads, int headDim, int lastPos) =>
        (long)rows * heads * Splits(lastPos) * (headDim + 2);

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> q, DeviceSpan<Half> kCache, DeviceSpan<Half> vCache, DeviceSpan<float> output,
        DeviceSpan<float> scratch, int rows, int heads, int kvHeads, int headDim, int startPos)
    {
        const string K = "attention_decode_f16";
        Elementwise.RequirePositive(rows, K, nameof(rows));
        Elementwise.RequirePositive(heads, K, nameof(heads));
        Elementwise.RequirePositive(kvHeads, K, nameof(kvHeads));
        if (heads % kvHeads != 0) throw new ArgumentException($"kernel '{K}': {heads} heads are not a multiple of {kvHeads} key/value heads", nameof(kvHeads));
        if (headDim <= 0 || headDim > 1024) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, $"kernel '{K}': head_dim must be in 1..1024");
        ArgumentOutOfRangeException.ThrowIfNegative(startPos);
        if (rows > 65535 || heads > 65535) throw new ArgumentOutOfRangeException(nameof(rows), $"kernel '{K}': grid too large");
        int lastPos = startPos + rows - 1;
        long kv = (long)(lastPos + 1) * kvHeads * headDim;
        q.RequireLength((long)rows * heads * headDim, K, nameof(q));
        kCache.RequireLength(kv, K, nameof(kCache));
        vCache.RequireLength(kv, K, nameof(vCache));
        output.RequireLength((long)rows * heads * headDim, K, nameof(output));
        scratch.RequireLength(ScratchFloats(rows, heads, headDim, lastPos), K, nameof(scratch));
    }

    /// <summary>output (rows, heads × headDim) for queries q at positions startPos .. startPos + rows - 1 over the
    /// cached positions 0 .. their own. The cache views start at position 0 of the layer. For a captured graph,
    /// <paramref name="position"/> holds the first row's position on the device (it changes between replays; the
    /// caller keeps it inside the cache views and the splits) and <paramref name="splits"/> fixes the split count
    /// (enough for the whole cache, so that one graph serves every step); the scratch must hold that many splits.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> q, DeviceSpan<Half> kCache, DeviceSpan<Half> vCache, DeviceSpan<float> output,
        DeviceSpan<float> scratch, int rows, int heads, int kvHeads, int headDim, int startPos, DeviceSpan<int> position = default, int splits = 0)
    {
        Check(q, kCache, vCache, output, scratch, rows, heads, kvHeads, headDim, startPos);
        int needed = Splits(startPos + rows - 1);
        if (splits == 0) splits = needed;
        if (splits < needed) throw new ArgumentOutOfRangeException(nameof(splits), splits, $"kernel 'attention_decode_f16': {needed} splits needed for position {startPos + rows - 1}");
        scratch.RequireLength((long)rows * heads * splits * (headDim + 2), "attention_decode_f16", nameof(scratch));
        if (position.Pointer != 0) position.RequireLength(1, "attention_decode_f16", nameof(position));
        ulong ppos = position.Pointer;
        long partO = (long)rows * heads * splits * headDim;
        ulong pq = q.Pointer, pk = kCache.Pointer, pv = vCache.Pointer, po = scratch.Pointer, pml = scratch.Slice(partO, scratch.Length - partO).Pointer, pout = output.Pointer;
        int h = heads, kvh = kvHeads, d = headDim, s = startPos, chunk = Chunk, sp = splits;
        float scale = 1.0f / MathF.Sqrt(headDim);
        void** a1 = stackalloc void*[] { &pq, &pk, &pv, &po, &pml, &h, &kvh, &d, &s, &ppos, &chunk, &scale };
        _partial.Launch(new LaunchShape((uint)splits, (uint)heads, (uint)rows, Threads, 1, 1, (uint)((Chunk + headDim) * sizeof(float))), stream, a1);
        void** a2 = stackalloc void*[] { &po, &pml, &pout, &h, &d, &sp };
        _combine.Launch(new LaunchShape((uint)heads, (uint)rows, 1, Threads, 1, 1), stream, a2);
    }
}
