using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Numerics.Tensors;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Backends.Cpu;

/// <summary>
/// Causal grouped-query attention over an F16 cache, following llama.cpp's non-flash CPU path: scores are
/// F16(q)·K scaled by 1/sqrt(d), softmax in float with the sum in double, probabilities rounded to F16 before the
/// product with V. Query head h reads key/value head h / (heads / kv_heads). Each (row, head) is one chunk of work
/// on the <see cref="WorkerPool"/>; the job and its per-thread scratch are reused, so a call allocates nothing once
/// the scratch has grown to the context length.
/// </summary>
internal static class CpuAttention
{
    [ThreadStatic] private static AttentionJob? t_job;

    /// <summary>Whether rows may take the vectorized path (<c>RowHeadWide</c>); tests turn it off to compare it with the
    /// general one, bit for bit.</summary>
    internal static bool VectorizedRows { get; set; } = true;

    /// <summary>Contiguous cache: row r is at position startPos + r and reads slots 0 .. its position.</summary>
    public static void Compute(float[] q, Half[] k, Half[] v, LlamaConfig c, int rows, int startPos, float[] output) =>
        Compute(q, k, v, c, rows, startPos, null, output);

    /// <summary>Paged cache: each row of the ragged batch reads its sequence's positions through its block table.</summary>
    public static void Compute(float[] q, Half[] k, Half[] v, LlamaConfig c, RaggedBatch batch, float[] output)
    {
        int maxPos = 0;
        for (int r = 0; r < batch.Rows; r++) maxPos = Math.Max(maxPos, batch.Positions[r]);
        Compute(q, k, v, c, batch.Rows, maxPos + 1 - batch.Rows, batch, output);
    }

    private static void Compute(float[] q, Half[] k, Half[] v, LlamaConfig c, int rows, int startPos, RaggedBatch? batch, float[] output)
    {
        var job = t_job ??= new AttentionJob();
        job.Batch = batch;
        job.Q = q;
        job.K = k;
        job.V = v;
        job.Config = c;
        job.Rows = rows;
        job.StartPos = startPos;
        job.Output = output;
        int work = rows * c.Heads;
        job.Reset(work);
        if (work >= 2) WorkerPool.Shared.Run(job);
        else job.Run();
        job.Q = job.Output = null!;
        job.K = job.V = null!;
        job.Batch = null;
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

        public override unsafe void Run()
        {
            var c = Config;
            int heads = c.Heads, hd = c.HeadDim, kvDim = c.KvDim, group = c.GroupSize;
            float scale = 1.0f / MathF.Sqrt(hd);
            // Scratch for the longest row: StartPos + Rows is one past the largest position (also for a batch).
            int maxN = StartPos + Rows;
            var batch = Batch;
            int shift = batch == null ? 0 : BitOperations.Log2((uint)batch.BlockSize), mask = batch == null ? -1 : batch.BlockSize - 1;
            // Grown in powers of two, so a decode allocates only when the context passes one.
            if (t_scores == null || t_scores.Length < maxN) t_scores = new float[Math.Max(256, (int)BitOperations.RoundUpToPowerOf2((uint)maxN))];
            if (t_row == null || t_row.Length < hd) { t_row = new float[hd]; t_q = new Half[hd]; }
            var row = t_row.AsSpan(0, hd);
            var qh = t_q.AsSpan(0, hd);
            for (int item = NextChunk(); item >= 0; item = NextChunk())
            {
                int r = item / heads, h = item % heads;
                int n = (batch == null ? StartPos + r : batch.Positions[r]) + 1;
                int kvh = h / group;
                // Slot of position p: p itself in a contiguous cache, else table[p / block] * block + p % block.
                ReadOnlySpan<int> table = batch == null ? default : batch.Table(batch.RowSequence[r]);
                // llama.cpp converts q to the cache type (F16); the score is then an F16 x F16 dot product (ggml_vec_dot_f16).
                TensorPrimitives.ConvertToHalf(Q.AsSpan((r * heads + h) * hd, hd), qh);
                var scores = t_scores.AsSpan(0, n);
                if (Wide)
                {
                    fixed (Half* pk = K, pv = V, pq = qh)
                    fixed (float* ps = scores, po = Output)
                        RowHeadWide(pk, pv, pq, table, shift, mask, n, kvDim, kvh * hd, hd, scale, ps, po + (r * heads + h) * hd);
                    continue;
                }
                fixed (Half* pk = K)
                fixed (Half* pq = qh)
                {
                    for (int p = 0; p < n; p++)
                        scores[p] = F16.Dot((byte*)(pk + Slot(table, p, shift, mask) * kvDim + kvh * hd), (byte*)pq, hd) * scale;
                }
                float max = TensorPrimitives.Max(scores);
                TensorPrimitives.Subtract(scores, max, scores);
                TensorPrimitives.Exp(scores, scores);
                double sum = 0;
                foreach (float e in scores) sum += e;
                float inv = (float)(1.0 / sum);
                var o = Output.AsSpan((r * heads + h) * hd, hd);
                o.Clear();
                for (int p = 0; p < n; p++)
                {
                    float w = (float)(Half)(scores[p] * inv);
                    TensorPrimitives.ConvertToSingle(V.AsSpan((int)(Slot(table, p, shift, mask) * kvDim) + kvh * hd, hd), row);
                    TensorPrimitives.MultiplyAdd(row, w, o, o);
                }
            }
        }

        // The vectorized row: AVX-512 and a head size that is a whole number of 16-lane chunks (64, 128, ...).
        private bool Wide => VectorizedRows && F16Wide.Lanes == 16 && Config.HeadDim % 16 == 0;

        /// <summary>
        /// One (row, head) of <see cref="Run"/> with the loops written out in 16-lane vectors: the same operations on
        /// the same values in the same order, so the results are bit-identical to the general path (which calls a dot
        /// product and two <see cref="TensorPrimitives"/> operations per position, and a scalar half conversion per
        /// probability: at a 128-token prompt those calls took a fifth of prefill).
        /// <list type="bullet">
        /// <item>Scores: q is widened once, not once per position; each lane runs <see cref="F16.Dot"/>'s two 8-lane
        /// accumulators side by side (lanes 0-7 and 8-15 of one register), summed as it sums them.</item>
        /// <item>Probabilities are rounded to F16 for the whole row at once.</item>
        /// <item>Output: up to four 16-lane accumulators stay in registers over all positions; each position adds
        /// V·w unfused, as <see cref="TensorPrimitives.MultiplyAdd(ReadOnlySpan{float}, float, ReadOnlySpan{float}, Span{float})"/> does.</item>
        /// </list>
        /// </summary>
        private static unsafe void RowHeadWide(Half* k, Half* v, Half* qh, ReadOnlySpan<int> table, int shift, int mask,
            int n, int kvDim, int kvOffset, int hd, float scale, float* scores, float* o)
        {
            float* q = stackalloc float[hd];
            for (int i = 0; i < hd; i += 16) F16Wide.Widen16((ushort*)qh + i).Store(q + i);
            for (int p = 0; p < n; p++)
            {
                ushort* kp = (ushort*)(k + Slot(table, p, shift, mask) * kvDim + kvOffset);
                Vector512<float> acc = Vector512<float>.Zero;
                for (int i = 0; i < hd; i += 16) acc = Vector512.FusedMultiplyAdd(F16Wide.Widen16(kp + i), Vector512.Load(q + i), acc);
                scores[p] = Vector256.Sum(acc.GetLower() + acc.GetUpper()) * scale;
            }

            var s = new Span<float>(scores, n);
            float max = TensorPrimitives.Max(s);
            TensorPrimitives.Subtract(s, max, s);
            TensorPrimitives.Exp(s, s);
            double sum = 0;
            for (int p = 0; p < n; p++) sum += scores[p];
            TensorPrimitives.Multiply(s, (float)(1.0 / sum), s);
            RoundToHalf(scores, n);

            int c = 0;
            for (; c + 64 <= hd; c += 64)
            {
                Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                for (int p = 0; p < n; p++)
                {
                    ushort* vp = (ushort*)(v + Slot(table, p, shift, mask) * kvDim + kvOffset + c);
                    var w = Vector512.Create(scores[p]);
                    a0 += F16Wide.Widen16(vp) * w;
                    a1 += F16Wide.Widen16(vp + 16) * w;
                    a2 += F16Wide.Widen16(vp + 32) * w;
                    a3 += F16Wide.Widen16(vp + 48) * w;
                }
                a0.Store(o + c); a1.Store(o + c + 16); a2.Store(o + c + 32); a3.Store(o + c + 48);
            }
            for (; c < hd; c += 16)
            {
                Vector512<float> a0 = Vector512<float>.Zero;
                for (int p = 0; p < n; p++)
                    a0 += F16Wide.Widen16((ushort*)(v + Slot(table, p, shift, mask) * kvDim + kvOffset + c)) * Vector512.Create(scores[p]);
                a0.Store(o + c);
            }
        }

        /// <summary>Rounds <paramref name="n"/> floats to F16 and back in place (the probabilities llama.cpp multiplies V with).</summary>
        private static unsafe void RoundToHalf(float* x, int n)
        {
            const int Chunk = 256;
            Half* h = stackalloc Half[Chunk];
            for (int i = 0; i < n; i += Chunk)
            {
                int len = Math.Min(Chunk, n - i);
                TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(x + i, len), new Span<Half>(h, len));
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(h, len), new Span<float>(x + i, len));
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static long Slot(ReadOnlySpan<int> table, int p, int shift, int mask) =>
            table.IsEmpty ? p : ((long)table[p >> shift] << shift) | (uint)(p & mask);
    }
}
