using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Numerics.Tensors;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Backends.Cpu;

/// <summary>
/// Causal grouped-query attention over an F16 cache, following llama.cpp's non-flash CPU path: scores are
/// F16(q)·K scaled by 1/sqrt(d), softmax in float with the sum in double, probabilities rounded to F16 before the
/// product with V. Query head h reads key/value head h / (heads / kv_heads). Two paths compute it: the vectorized one
/// (<c>RunBlocks</c>: AVX-512, head sizes a multiple of 16; chunks of work are blocks of rows times a KV head) and the
/// general one (<c>RunRows</c>: any machine and head size, ggml's operation order; a chunk per (row, head)), which is
/// also the reference the first is tested against. Chunks run on the <see cref="WorkerPool"/>; the job and its
/// per-thread scratch are reused, so a call allocates nothing once the scratch has grown to the context length.
/// </summary>
internal static class CpuAttention
{
    [ThreadStatic] private static AttentionJob? t_job;

    /// <summary>Whether the vectorized path (<c>RunBlocks</c>) may run where the machine supports it; tests turn it off
    /// to compare it with the general one.</summary>
    internal static bool VectorizedRows { get; set; } = true;

    /// <summary>Contiguous cache: row r is at position startPos + r and reads slots 0 .. its position.</summary>
    public static void Compute(float[] q, Half[] k, Half[] v, LlamaConfig c, int rows, int startPos, float[] output,
        AttentionVariant variant = default) =>
        Compute(q, k, v, c, rows, startPos, null, output, variant);

    /// <summary>Paged cache: each row of the ragged batch reads its sequence's positions through its block table.
    /// With <paramref name="scores"/> the scored rows also add what each position receives to its sums (layer
    /// <paramref name="layer"/> seeds Keyformer's noise).</summary>
    public static void Compute(float[] q, Half[] k, Half[] v, LlamaConfig c, RaggedBatch batch, float[] output,
        AttentionScores? scores = null, int layer = 0, AttentionVariant variant = default)
    {
        int maxPos = 0;
        for (int r = 0; r < batch.Rows; r++) maxPos = Math.Max(maxPos, batch.CachePositions[r]);
        Compute(q, k, v, c, batch.Rows, maxPos + 1 - batch.Rows, batch, output, variant, scores is { Any: true } ? scores : null, layer);
    }

    private static void Compute(float[] q, Half[] k, Half[] v, LlamaConfig c, int rows, int startPos, RaggedBatch? batch, float[] output,
        AttentionVariant variant, AttentionScores? scores = null, int layer = 0)
    {
        var job = t_job ??= new AttentionJob();
        job.Variant = variant;
        job.Batch = batch;
        job.Scores = scores;
        job.Layer = layer;
        job.Q = q;
        job.K = k;
        job.V = v;
        job.Config = c;
        job.Rows = rows;
        job.StartPos = startPos;
        job.Output = output;
        job.Wide = VectorizedRows && F16Wide.Lanes == 16 && c.HeadDim % 16 == 0;
        // Scoring: the general path takes a row (all its heads) per chunk, so each chunk sums its heads into its own
        // partial row and the partials are added in a fixed order afterwards (the same sums whatever the threads).
        int work = job.Wide ? job.BuildBlocks() * c.KvHeads : scores != null ? rows : rows * c.Heads;
        if (scores != null) job.GrowPartials(work, startPos + rows);
        job.Reset(work);
        if (work >= 2) WorkerPool.Shared.Run(job);
        else job.Run();
        if (scores != null) job.ReducePartials(work);
        job.Q = job.Output = null!;
        job.K = job.V = null!;
        job.Batch = null;
        job.Scores = null;
    }

    private sealed class AttentionJob : PoolJob
    {
        [ThreadStatic] private static float[]? t_scores, t_row;
        [ThreadStatic] private static Half[]? t_q;

        public float[] Q = null!, Output = null!;
        public Half[] K = null!, V = null!;
        public LlamaConfig Config = null!;
        public int Rows, StartPos;
        public RaggedBatch? Batch;
        public bool Wide;
        public AttentionScores? Scores;
        public int Layer;
        public AttentionVariant Variant;

        // The first cache position row r sees: its sliding window's start (0 without one). A tree row's window over
        // its own tree counts path nodes, not cache positions (MaskTree), so here it bounds only the prefix.
        private int WindowStart(int r)
        {
            if (Variant.Window == 0) return 0;
            if (Batch == null) return Variant.WindowStart(StartPos + r);
            int lo = Variant.WindowStart(Batch.WindowPosition(r)), s = Batch.RowSequence[r];
            return Batch.IsTree[s] ? Math.Min(lo, Batch.StartPos[s]) : lo;
        }

        // Gemma 2's soft cap on a row's scores, s = cap · tanh(s / cap), as llama.cpp applies it (scale, tanh, scale).
        private void SoftCap(Span<float> s)
        {
            float cap = Variant.SoftCap;
            if (cap == 0) return;
            TensorPrimitives.Multiply(s, 1.0f / cap, s);
            TensorPrimitives.Tanh(s, s);
            TensorPrimitives.Multiply(s, cap, s);
        }

        // Scoring: chunk i adds its scored rows' (row, head) weights to partial row i (stride _stride).
        private float[] _partial = [];
        private int _stride;

        public void GrowPartials(int chunks, int stride)
        {
            _stride = stride;
            long need = (long)chunks * stride;
            if (need > Array.MaxLength) throw new InvalidOperationException($"attention scores need {need} floats of scratch");
            if (_partial.Length < need) _partial = new float[Math.Max((int)need, Math.Min(Array.MaxLength, 2 * _partial.Length))];
        }

        // Adds each scored chunk's partial row to its sequence's sums, chunk by chunk in index order.
        public void ReducePartials(int chunks)
        {
            var batch = Batch!;
            for (int item = 0; item < chunks; item++)
            {
                int last;
                if (Wide)
                {
                    int blk = _blocks - 1 - item / Config.KvHeads;
                    if (!BlockScored(blk)) continue;
                    last = _blockEnd[blk] - 1;
                }
                else
                {
                    if (!Scores!.Scores(batch, item)) continue;
                    last = item;
                }
                int n = batch.CachePositions[last] + 1;
                var acc = Scores!.Accumulator(batch.RowSequence[last]).Slice(0, n);
                TensorPrimitives.Add(acc, _partial.AsSpan(item * _stride, n), acc);
            }
        }

        // Whether some row of block blk is scored (its last row is, when any is: scored rows run to the sequence's end).
        private bool BlockScored(int blk) => Scores!.Scores(Batch!, _blockEnd[blk] - 1);

        [ThreadStatic] private static float[]? t_gumbel;

        /// <summary>Keyformer's f = softmax((x + g) / τ) of one (row, head) over its masked logits x, added to part.</summary>
        private void AddGumbelSoftmax(ReadOnlySpan<float> logits, Span<float> part, int seq, int head, int rowPosition)
        {
            var scores = Scores!;
            int n = logits.Length;
            if (t_gumbel == null || t_gumbel.Length < n) t_gumbel = new float[Math.Max(256, (int)BitOperations.RoundUpToPowerOf2((uint)n))];
            var f = t_gumbel.AsSpan(0, n);
            float invT = 1f / scores.TemperatureOf(seq);
            for (int p = 0; p < n; p++) f[p] = (logits[p] + scores.Gumbel(seq, Layer, head, p, rowPosition)) * invT;
            float max = TensorPrimitives.Max(f);
            TensorPrimitives.Subtract(f, max, f);
            TensorPrimitives.Exp(f, f);
            double sum = 0;
            foreach (float e in f) sum += e;
            TensorPrimitives.MultiplyAdd(f, (float)(1.0 / sum), part, part);
        }

        // Blocks of the vectorized path: consecutive rows of one sequence, [start, end).
        private int[] _blockStart = new int[16], _blockEnd = new int[16];
        private int _blocks;

        public override void Run()
        {
            if (Wide) RunBlocks();
            else RunRows();
        }

        /// <summary>Splits the rows into blocks of consecutive rows of one sequence, at most <see cref="PairsPerBlock"/>
        /// (row, query head) pairs per block and KV head; returns the block count. The arrays grow, never shrink.</summary>
        public int BuildBlocks()
        {
            int rowsPerBlock = Math.Max(1, PairsPerBlock / Config.GroupSize);
            _blocks = 0;
            if (Batch == null) AddBlocks(0, Rows, rowsPerBlock);
            else
                for (int s = 0; s < Batch.Sequences; s++) AddBlocks(Batch.RowStart[s], Batch.RowCount[s], rowsPerBlock);
            return _blocks;
        }

        private void AddBlocks(int start, int count, int rowsPerBlock)
        {
            for (int r0 = start; r0 < start + count; r0 += rowsPerBlock)
            {
                if (_blocks == _blockStart.Length)
                {
                    Array.Resize(ref _blockStart, 2 * _blocks);
                    Array.Resize(ref _blockEnd, 2 * _blocks);
                }
                _blockStart[_blocks] = r0;
                _blockEnd[_blocks++] = Math.Min(start + count, r0 + rowsPerBlock);
            }
        }

        private unsafe void RunRows()
        {
            var c = Config;
            int heads = c.Heads, hd = c.HeadDim, kvDim = c.KvDim, group = c.GroupSize;
            float scale = Variant.ScaleFor(hd);
            // Scratch for the longest row: StartPos + Rows is one past the largest position (also for a batch).
            int maxN = StartPos + Rows;
            var batch = Batch;
            int shift = batch == null ? 0 : BitOperations.Log2((uint)batch.BlockSize), mask = batch == null ? -1 : batch.BlockSize - 1;
            // Grown in powers of two, so a decode allocates only when the context passes one.
            if (t_scores == null || t_scores.Length < maxN) t_scores = new float[Math.Max(256, (int)BitOperations.RoundUpToPowerOf2((uint)maxN))];
            if (t_row == null || t_row.Length < hd) { t_row = new float[hd]; t_q = new Half[hd]; }
            var row = t_row.AsSpan(0, hd);
            var qh = t_q.AsSpan(0, hd);
            bool scoring = Scores != null;
            for (int item = NextChunk(); item >= 0; item = NextChunk())
            {
                int r = scoring ? item : item / heads;
                bool scored = scoring && Scores!.Scores(batch!, r);
                int n0 = (batch == null ? StartPos + r : batch.CachePositions[r]) + 1;
                var part = scored ? _partial.AsSpan(item * _stride, n0) : default;
                part.Clear();
                for (int h = scoring ? 0 : item % heads, hEnd = scoring ? heads : h + 1; h < hEnd; h++)
                    RunRow(r, h, n0, scored, part, batch, shift, mask, scale, row, qh);
            }
        }

        private unsafe void RunRow(int r, int h, int n, bool scored, Span<float> part, RaggedBatch? batch, int shift, int mask,
            float scale, Span<float> row, Span<Half> qh)
        {
            var c = Config;
            int heads = c.Heads, hd = c.HeadDim, kvDim = c.KvDim, group = c.GroupSize;
            {
                int kvh = h / group;
                // Slot of position p: p itself in a contiguous cache, else table[p / block] * block + p % block.
                ReadOnlySpan<int> table = batch == null ? default : batch.Table(batch.RowSequence[r]);
                // llama.cpp converts q to the cache type (F16); the score is then an F16 x F16 dot product (ggml_vec_dot_f16).
                TensorPrimitives.ConvertToHalf(Q.AsSpan((r * heads + h) * hd, hd), qh);
                var scores = t_scores.AsSpan(0, n);
                int lo = WindowStart(r);   // positions before the window get probability 0, as masked ones do
                scores[..lo].Fill(float.NegativeInfinity);
                fixed (Half* pk = K)
                fixed (Half* pq = qh)
                {
                    for (int p = lo; p < n; p++)
                        scores[p] = F16.Dot((byte*)(pk + Slot(table, p, shift, mask) * kvDim + kvh * hd), (byte*)pq, hd) * scale;
                }
                SoftCap(scores[lo..]);
                if (batch != null) MaskTree(batch, r, scores, Variant.Window);
                if (scored && Scores!.KindOf(batch!.RowSequence[r]) == AttentionScoreKind.GumbelSoftmax) AddGumbelSoftmax(scores, part, batch.RowSequence[r], h, batch.Positions[r]);
                float max = TensorPrimitives.Max(scores);
                TensorPrimitives.Subtract(scores, max, scores);
                TensorPrimitives.Exp(scores, scores);
                double sum = 0;
                foreach (float e in scores) sum += e;
                float inv = (float)(1.0 / sum);
                if (scored && Scores!.KindOf(batch!.RowSequence[r]) == AttentionScoreKind.Probability) TensorPrimitives.MultiplyAdd(scores, inv, part, part);
                var o = Output.AsSpan((r * heads + h) * hd, hd);
                o.Clear();
                for (int p = lo; p < n; p++)
                {
                    float w = (float)(Half)(scores[p] * inv);
                    TensorPrimitives.ConvertToSingle(V.AsSpan((int)(Slot(table, p, shift, mask) * kvDim) + kvh * hd, hd), row);
                    TensorPrimitives.MultiplyAdd(row, w, o, o);
                }
            }
        }

        // (row, query head) pairs per block of the vectorized path: each widened tile of K or V serves all of them.
        private const int PairsPerBlock = 32;
        // Positions per tile: K and V are widened a tile at a time (K transposed), 4 vectors of 16 positions.
        private const int Tile = 64;

        [ThreadStatic] private static float[]? t_blockScores, t_blockQ, t_tile;

        /// <summary>
        /// The vectorized path (AVX-512, head size a multiple of 16), written as the two matrix products attention is.
        /// One chunk is a block of consecutive rows of one sequence times one KV head, with every query head that reads
        /// it (a prefill's rows all read the same positions, a GQA group's heads the same KV head), so each K and V
        /// position is widened from F16 once per block instead of once per (row, head):
        /// <list type="bullet">
        /// <item>scores: K is widened a tile of 64 positions at a time and transposed, so 16 positions' scores fill one
        /// register: Σ_d q_d·K[p][d] by multiply-adds in d order, with q_d broadcast (no horizontal sums);</item>
        /// <item>softmax as in the general path (max, exp, the sum in double), probabilities rounded to F16 as llama.cpp
        /// multiplies V with them;</item>
        /// <item>output: V widened a tile at a time; each (row, head)'s output stays in registers over the tile and
        /// takes V[p]·w_p by multiply-add in position order.</item>
        /// </list>
        /// What a (row, head) gets depends only on its q and the positions it sees, never on the rows beside it or the
        /// block it falls in, so rows stay bit-identical alone or batched. The sums run in another order than the general
        /// path's (which follows ggml's F16 dot product), so the two agree to rounding, not bit for bit.
        /// Rows of a block hold consecutive cache positions, so the rows that see cache position p are those from p − first
        /// on (a tree row then masks the positions of its tree that are not its ancestors: MaskTree).
        /// </summary>
        private unsafe void RunBlocks()
        {
            var c = Config;
            int heads = c.Heads, hd = c.HeadDim, kvDim = c.KvDim, group = c.GroupSize, kvHeads = c.KvHeads;
            float scale = Variant.ScaleFor(hd);
            var batch = Batch;
            int shift = batch == null ? 0 : BitOperations.Log2((uint)batch.BlockSize), mask = batch == null ? -1 : batch.BlockSize - 1;
            int maxPairs = Math.Max(1, PairsPerBlock / group) * group;
            int maxPad = (StartPos + Rows + Tile - 1) / Tile * Tile;
            // Grown in powers of two, so a decode allocates only when the context passes one.
            long scoreNeed = (long)maxPairs * maxPad;
            if (t_blockScores == null || t_blockScores.Length < scoreNeed)
                t_blockScores = new float[Math.Max(4096, (int)BitOperations.RoundUpToPowerOf2((uint)scoreNeed))];
            if (t_blockQ == null || t_blockQ.Length < maxPairs * hd) t_blockQ = new float[maxPairs * hd];
            if (t_tile == null || t_tile.Length < Tile * hd) t_tile = new float[Tile * hd];
            float* block16 = stackalloc float[256];

            fixed (Half* pk = K, pv = V)
            fixed (float* po = Output, pq = Q, sc = t_blockScores, qf = t_blockQ, tile = t_tile)
            {
                for (int item = NextChunk(); item >= 0; item = NextChunk())
                {
                    // The last blocks of a prompt see the most positions: hand them out first.
                    int blk = _blocks - 1 - item / kvHeads, kvh = item % kvHeads;
                    int r0 = _blockStart[blk], nr = _blockEnd[blk] - r0, pairs = nr * group;
                    int first = batch == null ? StartPos + r0 : batch.CachePositions[r0];
                    int n = first + nr, nPad = (n + Tile - 1) / Tile * Tile; // positions the block's last row sees; score row stride
                    ReadOnlySpan<int> table = batch == null ? default : batch.Table(batch.RowSequence[r0]);
                    long kvOffset = kvh * hd;
                    // A sliding window: tiles wholly before every row's window are neither scored nor read (their
                    // probabilities are set to 0 below, with the rest of each row's positions before its window).
                    int blockLo = int.MaxValue;
                    for (int i = 0; i < nr; i++) blockLo = Math.Min(blockLo, WindowStart(r0 + i));
                    int tile0 = blockLo / Tile * Tile;

                    // q of each pair, rounded to F16 and widened: pair i * group + g is row r0 + i, head kvh * group + g.
                    for (int i = 0; i < nr; i++)
                        for (int g = 0; g < group; g++)
                            F16Wide.RoundRow(pq + ((r0 + i) * heads + kvh * group + g) * hd, qf + (i * group + g) * hd, hd);

                    for (int t0 = tile0; t0 < n; t0 += Tile)
                    {
                        // K of the tile, transposed: tile[d * Tile + j] = K[t0 + j][d], for the 16-position vectors the
                        // tile's tn positions need (nv of them); positions past n within them are zero.
                        int tn = Math.Min(Tile, n - t0), nv = (tn + 15) / 16;
                        for (int vec = 0; vec < nv; vec++)
                            for (int d = 0; d < hd; d += 16)
                            {
                                // 16 positions x 16 dimensions, widened row by row, then transposed in registers.
                                for (int j = 0; j < 16; j++)
                                {
                                    int p = t0 + 16 * vec + j;
                                    var row = p < n ? F16Wide.Widen16((ushort*)(pk + Slot(table, p, shift, mask) * kvDim + kvOffset) + d) : Vector512<float>.Zero;
                                    row.Store(block16 + 16 * j);
                                }
                                Transpose16(block16, tile + d * Tile + 16 * vec, Tile);
                            }
                        for (int pair = Math.Max(0, t0 - first) * group; pair < pairs; pair++)
                        {
                            float* q = qf + pair * hd, srow = sc + (long)pair * nPad + t0;
                            if (nv == 4)
                            {
                                Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                                for (int d = 0; d < hd; d++)
                                {
                                    var qd = Vector512.Create(q[d]);
                                    float* kd = tile + d * Tile;
                                    a0 = Vector512.FusedMultiplyAdd(qd, Vector512.Load(kd), a0);
                                    a1 = Vector512.FusedMultiplyAdd(qd, Vector512.Load(kd + 16), a1);
                                    a2 = Vector512.FusedMultiplyAdd(qd, Vector512.Load(kd + 32), a2);
                                    a3 = Vector512.FusedMultiplyAdd(qd, Vector512.Load(kd + 48), a3);
                                }
                                (a0 * scale).Store(srow); (a1 * scale).Store(srow + 16);
                                (a2 * scale).Store(srow + 32); (a3 * scale).Store(srow + 48);
                                continue;
                            }
                            // The last, partial tile: the same sums, a vector at a time.
                            for (int vec = 0; vec < nv; vec++)
                            {
                                Vector512<float> a = Vector512<float>.Zero;
                                for (int d = 0; d < hd; d++) a = Vector512.FusedMultiplyAdd(Vector512.Create(q[d]), Vector512.Load(tile + d * Tile + 16 * vec), a);
                                (a * scale).Store(srow + 16 * vec);
                            }
                        }
                    }

                    bool scoredBlock = Scores != null && BlockScored(blk);
                    var part = scoredBlock ? _partial.AsSpan(item * _stride, n) : default;
                    part.Clear();
                    for (int pair = 0; pair < pairs; pair++)
                    {
                        int len = first + pair / group + 1;
                        var s = new Span<float>(sc + (long)pair * nPad, len);
                        int lo = WindowStart(r0 + pair / group);
                        SoftCap(s[lo..]);
                        s[..lo].Fill(float.NegativeInfinity);
                        if (batch != null) MaskTree(batch, r0 + pair / group, s, Variant.Window);
                        bool scored = scoredBlock && Scores!.Scores(batch!, r0 + pair / group);
                        if (scored && Scores!.KindOf(batch!.RowSequence[r0]) == AttentionScoreKind.GumbelSoftmax)
                            AddGumbelSoftmax(s, part.Slice(0, len), batch.RowSequence[r0], kvh * group + pair % group, batch.Positions[r0 + pair / group]);
                        float max = TensorPrimitives.Max(s);
                        TensorPrimitives.Subtract(s, max, s);
                        TensorPrimitives.Exp(s, s);
                        double sum = 0;
                        foreach (float e in s) sum += e;
                        TensorPrimitives.Multiply(s, (float)(1.0 / sum), s);
                        if (scored && Scores!.KindOf(batch!.RowSequence[r0]) == AttentionScoreKind.Probability) TensorPrimitives.Add(s, part.Slice(0, len), part.Slice(0, len));
                        F16Wide.RoundRow(sc + (long)pair * nPad, sc + (long)pair * nPad, len); // in place
                        new Span<float>(po + ((r0 + pair / group) * heads + kvh * group + pair % group) * hd, hd).Clear();
                    }

                    if (pairs < 4)
                    {
                        // Few (row, head) pairs (decode): widening V into the tile first would not be repaid, so each
                        // pair widens as it goes. The same multiply-adds on the same values, in the same order.
                        for (int pair = 0; pair < pairs; pair++)
                        {
                            int len = first + pair / group + 1, lo = WindowStart(r0 + pair / group);
                            float* w = sc + (long)pair * nPad;
                            float* o = po + ((r0 + pair / group) * heads + kvh * group + pair % group) * hd;
                            for (int d = 0; d < hd; d += 16)
                            {
                                Vector512<float> o0 = Vector512<float>.Zero;
                                for (int p = lo; p < len; p++)
                                    o0 = Vector512.FusedMultiplyAdd(F16Wide.Widen16((ushort*)(pv + Slot(table, p, shift, mask) * kvDim + kvOffset) + d), Vector512.Create(w[p]), o0);
                                o0.Store(o + d);
                            }
                        }
                        continue;
                    }
                    for (int t0 = tile0; t0 < n; t0 += Tile)
                    {
                        int tn = Math.Min(Tile, n - t0);
                        for (int j = 0; j < tn; j++)
                        {
                            ushort* vp = (ushort*)(pv + Slot(table, t0 + j, shift, mask) * kvDim + kvOffset);
                            for (int d = 0; d < hd; d += 16) F16Wide.Widen16(vp + d).Store(tile + j * hd + d);
                        }
                        for (int pair = Math.Max(0, t0 - first) * group; pair < pairs; pair++)
                        {
                            int len = Math.Min(tn, first + pair / group + 1 - t0);
                            float* w = sc + (long)pair * nPad + t0;
                            float* o = po + ((r0 + pair / group) * heads + kvh * group + pair % group) * hd;
                            int d = 0;
                            for (; d + 64 <= hd; d += 64)
                            {
                                Vector512<float> o0 = Vector512.Load(o + d), o1 = Vector512.Load(o + d + 16);
                                Vector512<float> o2 = Vector512.Load(o + d + 32), o3 = Vector512.Load(o + d + 48);
                                for (int j = 0; j < len; j++)
                                {
                                    var wj = Vector512.Create(w[j]);
                                    float* vj = tile + j * hd + d;
                                    o0 = Vector512.FusedMultiplyAdd(Vector512.Load(vj), wj, o0);
                                    o1 = Vector512.FusedMultiplyAdd(Vector512.Load(vj + 16), wj, o1);
                                    o2 = Vector512.FusedMultiplyAdd(Vector512.Load(vj + 32), wj, o2);
                                    o3 = Vector512.FusedMultiplyAdd(Vector512.Load(vj + 48), wj, o3);
                                }
                                o0.Store(o + d); o1.Store(o + d + 16); o2.Store(o + d + 32); o3.Store(o + d + 48);
                            }
                            for (; d < hd; d += 16)
                            {
                                Vector512<float> o0 = Vector512.Load(o + d);
                                for (int j = 0; j < len; j++) o0 = Vector512.FusedMultiplyAdd(Vector512.Load(tile + j * hd + d), Vector512.Create(w[j]), o0);
                                o0.Store(o + d);
                            }
                        }
                    }
                }
            }
        }

        /// <summary>Writes the transpose of the 16 x 16 floats at <paramref name="src"/> (rows of 16) to
        /// <paramref name="dst"/>, rows <paramref name="dstStride"/> floats apart: the usual three-stage shuffle
        /// (32-bit, 64-bit, 128-bit interleaves), 64 shuffles where element-wise it would be 256 scalar stores.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe void Transpose16(float* src, float* dst, int dstStride)
        {
            // Rows 2i and 2i+1 interleaved by 32-bit elements...
            Vector512<float> t0 = Avx512F.UnpackLow(Vector512.Load(src), Vector512.Load(src + 16)), t1 = Avx512F.UnpackHigh(Vector512.Load(src), Vector512.Load(src + 16));
            Vector512<float> t2 = Avx512F.UnpackLow(Vector512.Load(src + 32), Vector512.Load(src + 48)), t3 = Avx512F.UnpackHigh(Vector512.Load(src + 32), Vector512.Load(src + 48));
            Vector512<float> t4 = Avx512F.UnpackLow(Vector512.Load(src + 64), Vector512.Load(src + 80)), t5 = Avx512F.UnpackHigh(Vector512.Load(src + 64), Vector512.Load(src + 80));
            Vector512<float> t6 = Avx512F.UnpackLow(Vector512.Load(src + 96), Vector512.Load(src + 112)), t7 = Avx512F.UnpackHigh(Vector512.Load(src + 96), Vector512.Load(src + 112));
            Vector512<float> t8 = Avx512F.UnpackLow(Vector512.Load(src + 128), Vector512.Load(src + 144)), t9 = Avx512F.UnpackHigh(Vector512.Load(src + 128), Vector512.Load(src + 144));
            Vector512<float> ta = Avx512F.UnpackLow(Vector512.Load(src + 160), Vector512.Load(src + 176)), tb = Avx512F.UnpackHigh(Vector512.Load(src + 160), Vector512.Load(src + 176));
            Vector512<float> tc = Avx512F.UnpackLow(Vector512.Load(src + 192), Vector512.Load(src + 208)), td = Avx512F.UnpackHigh(Vector512.Load(src + 192), Vector512.Load(src + 208));
            Vector512<float> te = Avx512F.UnpackLow(Vector512.Load(src + 224), Vector512.Load(src + 240)), tf = Avx512F.UnpackHigh(Vector512.Load(src + 224), Vector512.Load(src + 240));
            // ...then by 64-bit pairs...
            Vector512<float> r0 = Lo64(t0, t2), r1 = Hi64(t0, t2), r2 = Lo64(t1, t3), r3 = Hi64(t1, t3);
            Vector512<float> r4 = Lo64(t4, t6), r5 = Hi64(t4, t6), r6 = Lo64(t5, t7), r7 = Hi64(t5, t7);
            Vector512<float> r8 = Lo64(t8, ta), r9 = Hi64(t8, ta), ra = Lo64(t9, tb), rb = Hi64(t9, tb);
            Vector512<float> rc = Lo64(tc, te), rd = Hi64(tc, te), re = Lo64(td, tf), rf = Hi64(td, tf);
            // ...then by 128-bit blocks, twice.
            t0 = Avx512F.Shuffle4x128(r0, r4, 0x88); t1 = Avx512F.Shuffle4x128(r1, r5, 0x88);
            t2 = Avx512F.Shuffle4x128(r2, r6, 0x88); t3 = Avx512F.Shuffle4x128(r3, r7, 0x88);
            t4 = Avx512F.Shuffle4x128(r0, r4, 0xDD); t5 = Avx512F.Shuffle4x128(r1, r5, 0xDD);
            t6 = Avx512F.Shuffle4x128(r2, r6, 0xDD); t7 = Avx512F.Shuffle4x128(r3, r7, 0xDD);
            t8 = Avx512F.Shuffle4x128(r8, rc, 0x88); t9 = Avx512F.Shuffle4x128(r9, rd, 0x88);
            ta = Avx512F.Shuffle4x128(ra, re, 0x88); tb = Avx512F.Shuffle4x128(rb, rf, 0x88);
            tc = Avx512F.Shuffle4x128(r8, rc, 0xDD); td = Avx512F.Shuffle4x128(r9, rd, 0xDD);
            te = Avx512F.Shuffle4x128(ra, re, 0xDD); tf = Avx512F.Shuffle4x128(rb, rf, 0xDD);
            Avx512F.Shuffle4x128(t0, t8, 0x88).Store(dst); Avx512F.Shuffle4x128(t0, t8, 0xDD).Store(dst + 8 * dstStride);
            Avx512F.Shuffle4x128(t1, t9, 0x88).Store(dst + dstStride); Avx512F.Shuffle4x128(t1, t9, 0xDD).Store(dst + 9 * dstStride);
            Avx512F.Shuffle4x128(t2, ta, 0x88).Store(dst + 2 * dstStride); Avx512F.Shuffle4x128(t2, ta, 0xDD).Store(dst + 10 * dstStride);
            Avx512F.Shuffle4x128(t3, tb, 0x88).Store(dst + 3 * dstStride); Avx512F.Shuffle4x128(t3, tb, 0xDD).Store(dst + 11 * dstStride);
            Avx512F.Shuffle4x128(t4, tc, 0x88).Store(dst + 4 * dstStride); Avx512F.Shuffle4x128(t4, tc, 0xDD).Store(dst + 12 * dstStride);
            Avx512F.Shuffle4x128(t5, td, 0x88).Store(dst + 5 * dstStride); Avx512F.Shuffle4x128(t5, td, 0xDD).Store(dst + 13 * dstStride);
            Avx512F.Shuffle4x128(t6, te, 0x88).Store(dst + 6 * dstStride); Avx512F.Shuffle4x128(t6, te, 0xDD).Store(dst + 14 * dstStride);
            Avx512F.Shuffle4x128(t7, tf, 0x88).Store(dst + 7 * dstStride); Avx512F.Shuffle4x128(t7, tf, 0xDD).Store(dst + 15 * dstStride);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Lo64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Hi64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();

        /// <summary>A tree row's scores over its cache positions 0 .. its own: the rows of its tree that are not its
        /// ancestors get −∞, so their softmax weight is exactly 0. A zero weight adds nothing to the sum or to the
        /// output (0·v = 0), so the row gets the numbers, bit for bit, that it would get with only its path cached at
        /// consecutive positions: what plain decoding along that path computes. Chains are left alone. With a sliding
        /// <paramref name="window"/> an ancestor more than window − 1 steps up the path is masked too (the path is
        /// what the window counts; the prefix's bound is the caller's).</summary>
        private static void MaskTree(RaggedBatch batch, int row, Span<float> scores, int window)
        {
            int s = batch.RowSequence[row];
            // A pruned prompt's rows that skipped this layer (see RaggedBatch.HiddenStart): no keys or values here.
            for (int p = batch.HiddenStart[s], end = Math.Min(batch.HiddenEnd[s], scores.Length); p < end; p++) scores[p] = float.NegativeInfinity;
            if (!batch.IsTree[s]) return;
            int start = batch.StartPos[s], own = row - batch.RowStart[s], path = 1;   // path nodes from j to the row
            for (int j = own - 1; j >= 0; j--)
                if (!batch.Sees(row, j) || (window > 0 && ++path > window)) scores[start + j] = float.NegativeInfinity;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static long Slot(ReadOnlySpan<int> table, int p, int shift, int mask) =>
            table.IsEmpty ? p : ((long)table[p >> shift] << shift) | (uint)(p & mask);
    }
}
