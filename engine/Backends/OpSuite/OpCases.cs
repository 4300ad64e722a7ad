using Tessera.Backends.Cuda;
using Tessera.Interop.Kernels;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Backends.OpSuite;

/// <summary>
/// The op test list: every IBackend op over swept shapes and types, including odd sizes and sizes that are not
/// multiples of a block or warp. Tolerances are per op and type and say where the difference comes from.
/// </summary>
public static partial class OpCases
{
    // Sources of error against the double-precision definition (and between backends):
    private const double Exact = 1e-6;        // copies and gathers: bit-exact, float printing aside
    private const double Float32 = 1e-5;      // float32 arithmetic in a different order / libm ulps
    private const double F16Act = 2e-3;       // the CPU rounds activations to F16 for F16 weights (and q/probs in attention)
    private const double BF16Act = 1e-2;      // ... to BF16 for BF16 weights (8-bit mantissa)
    private const double Q8Act = 1e-2;        // ... to Q8_0/Q8_K for quantized weights (8-bit activations)
    private const double SameToken = 0;       // sampling returns a token id: the same token or a failure

    /// <summary>Every case, in a fixed order.</summary>
    public static IReadOnlyList<OpCase> All { get; } = [.. Build()];

    private static IEnumerable<OpCase> Build()
    {
        foreach (var (t, vocab, dim) in new[] { (GgmlType.F32, 50, 64), (GgmlType.F16, 50, 96), (GgmlType.BF16, 20, 40),
                     (GgmlType.Q8_0, 50, 64), (GgmlType.Q4_K, 30, 256), (GgmlType.Q6_K, 30, 512) })
            yield return Embed(t, vocab, dim);
        foreach (var (rows, dim) in new[] { (1, 4096), (3, 77), (2, 2048), (5, 1) })
            yield return RmsNorm(rows, dim);
        foreach (var layout in new[] { RopeLayout.AdjacentPairs, RopeLayout.RotateHalf })
            foreach (var (rows, heads, hd, start, theta) in new[] { (1, 4, 64, 0, 10000f), (3, 2, 128, 1000, 500000f), (2, 3, 6, 17, 10000f) })
                yield return Rope(layout, rows, heads, hd, start, theta);
        // Scaled angles: per-pair factors (Llama 3.1, LongRoPE), a linear scale, LongRoPE's magnitude.
        foreach (var layout in new[] { RopeLayout.AdjacentPairs, RopeLayout.RotateHalf })
            foreach (var (rows, heads, hd, start, scale, attn) in new[] { (3, 2, 64, 5000, 1f, 1.19f), (2, 3, 6, 17, 0.125f, 1f), (4, 1, 128, 70000, 0.25f, 1.55f) })
                yield return Rope(layout, rows, heads, hd, start, 500000f, ScaledFactors(hd / 2), scale, attn);
        foreach (int n in new[] { 1, 1000, 8195 }) yield return SwiGlu(n);
        foreach (int n in new[] { 1, 1000, 8195 }) yield return GeGlu(n);
        foreach (int n in new[] { 7, 4099 }) yield return SoftCap(n, 3f);
        foreach (int n in new[] { 7, 4099 }) yield return Scale(n, 33.941124f);
        foreach (int n in new[] { 1, 4097 }) yield return Add(n);
        foreach (var (rows, cols) in new[] { (1, 896), (3, 128), (7, 1000) }) yield return AddBias(rows, cols);
        foreach (var (t, rows, outRows, cols) in new[]
                 {
                     (GgmlType.F32, 1, 67, 37), (GgmlType.F32, 3, 64, 256),
                     (GgmlType.F16, 1, 67, 70), (GgmlType.F16, 2, 128, 512),
                     (GgmlType.BF16, 1, 33, 66), (GgmlType.BF16, 2, 64, 512),
                     (GgmlType.Q8_0, 1, 67, 96), (GgmlType.Q8_0, 3, 128, 1024),
                     (GgmlType.Q4_0, 1, 67, 96), (GgmlType.Q4_0, 3, 128, 1024),
                     (GgmlType.Q4_K, 1, 67, 256), (GgmlType.Q4_K, 3, 64, 2048),
                     (GgmlType.Q6_K, 1, 67, 256), (GgmlType.Q6_K, 3, 64, 2048),
                     (GgmlType.Q5_K, 1, 33, 512), (GgmlType.Q4_1, 2, 33, 64),
                 })
            yield return MatMul(t, rows, outRows, cols);
        // Prefill shapes (CUDA: the tensor-core gemm for rows > 1): token and weight-row counts that are not multiples
        // of the 64 x 64 tile, K tails (F16 cols 80 = 2.5 stages of 32; cols 70 is not a multiple of 8, so the
        // scalar load path), and several K stages for every quantized format. The tolerances are matmul's above: for
        // F16/BF16 the GPU rounds x to the weight type as the CPU does, so only the summation order differs (far
        // below them); for quantized weights the GPU rounds the dequantized weights and x to F16 (relative 2^-11 each,
        // about 5e-4 normalized) where the CPU quantizes x to 8 bits (about 4e-3), inside Q8Act.
        foreach (var (t, rows, outRows, cols) in new[]
                 {
                     (GgmlType.F16, 17, 100, 96), (GgmlType.F16, 70, 130, 80), (GgmlType.F16, 5, 67, 70),
                     (GgmlType.BF16, 33, 65, 512), (GgmlType.BF16, 64, 64, 40),
                     (GgmlType.Q8_0, 65, 129, 96), (GgmlType.Q4_0, 9, 64, 1024),
                     (GgmlType.Q4_K, 70, 67, 512), (GgmlType.Q6_K, 19, 130, 768), (GgmlType.F32, 20, 33, 100),
                 })
            yield return MatMul(t, rows, outRows, cols);
        foreach (var (heads, kvHeads, hd, rows, start) in new[] { (4, 2, 64, 1, 0), (4, 2, 64, 1, 300), (4, 2, 64, 4, 5), (8, 8, 128, 1, 40), (6, 2, 32, 2, 513) })
            yield return Attention(heads, kvHeads, hd, rows, start);
        // Prefill (CUDA: flash attention over 16-position pages for rows > 1): several 16-row query tiles, a start
        // inside a page, head_dim 80 and 256 (not a multiple of 32; the largest supported), rows not a multiple of 16.
        foreach (var (heads, kvHeads, hd, rows, start) in new[] { (4, 2, 64, 37, 0), (8, 2, 128, 20, 100), (4, 1, 80, 33, 7), (2, 2, 256, 17, 15) })
            yield return Attention(heads, kvHeads, hd, rows, start);
        // Ragged batches over a paged cache (CUDA: rope at per-row positions, kv_append through each row's slot, flash
        // attention cut into per-sequence tiles): prefill chunks and decodes side by side, a first token (position
        // 0), chunks starting inside a block, rows not a multiple of 16, a context spanning 19 blocks, blocks smaller
        // than the kernel's 16-position tile (8) and larger (32), GQA and MHA. Blocks are handed out in a shuffled
        // order from a pool with spare blocks, so no sequence's blocks are contiguous or in order.
        foreach (var (heads, kvHeads, hd, block, seqs) in new (int, int, int, int, (int Start, int Rows)[])[]
                 {
                     (4, 2, 64, 16, [(0, 37), (300, 1), (45, 20), (0, 1)]),
                     (8, 2, 128, 16, [(17, 1), (5, 3), (100, 16), (31, 1)]),
                     (4, 4, 80, 8, [(0, 19), (33, 1), (9, 2)]),
                     (2, 1, 256, 32, [(70, 2), (0, 17)]),
                 })
            yield return PagedAttention(heads, kvHeads, hd, block, seqs);
        // Layer variants (Gemma): a soft cap the scores reach (inputs of scale 2), another scale, sliding windows of 1
        // (the row alone), 16 (one kernel page), 40 (pages skipped before it) and 500 (past every start: no effect).
        foreach (var (heads, kvHeads, hd, block, seqs, variant) in new (int, int, int, int, (int Start, int Rows)[], AttentionVariant)[]
                 {
                     (4, 2, 64, 16, [(0, 37), (300, 1), (45, 20)], new(0f, 0.5f, 0)),
                     (4, 2, 64, 16, [(0, 37), (300, 1), (45, 20)], new(0.1f, 0f, 16)),
                     (2, 1, 256, 8, [(70, 2), (0, 17), (33, 1)], new(0f, 2f, 40)),
                     (8, 2, 128, 32, [(17, 1), (5, 3), (100, 16)], new(0f, 0f, 1)),
                     (4, 4, 80, 16, [(9, 20), (61, 1)], new(0f, 0f, 500)),
                 })
            yield return PagedAttention(heads, kvHeads, hd, block, seqs, variant);
        foreach (var layout in new[] { RopeLayout.AdjacentPairs, RopeLayout.RotateHalf })
            yield return RaggedRope(layout, 3, 64, 10000f, [(0, 3), (1000, 1), (17, 5)]);
        // Draft trees (speculative verification): trees of 1 to 128 nodes and depths 1 to 12, after prefixes that
        // start inside a block or are empty, head sizes 64 and 128, GQA and MHA, a tree beside chains in one batch,
        // blocks of 8, 16 and 32 positions (a tree spanning blocks and 16-row tiles).
        foreach (var (heads, kvHeads, hd, block, prefix, nodes, depth, chains) in new (int, int, int, int, int, int, int, (int, int)[])[]
                 {
                     (4, 2, 64, 16, 37, 1, 1, []),
                     (4, 2, 64, 16, 5, 9, 3, []),
                     (8, 2, 128, 16, 100, 33, 6, [(12, 1), (0, 18)]),
                     (4, 4, 64, 8, 0, 80, 6, []),
                     (2, 1, 128, 32, 21, 128, 12, [(40, 1)]),
                     (6, 2, 64, 16, 3, 12, 12, []),
                 })
            yield return TreeAttention(heads, kvHeads, hd, block, prefix, nodes, depth, chains);
        // A window measured along each tree row's path: 8 positions reach back into the prefix from shallow rows and
        // stay inside the tree from deep ones (depth 12); a soft cap beside it.
        yield return TreeAttention(4, 2, 64, 16, 37, 33, 12, [(20, 1), (0, 18)], new(0f, 1f, 8));
        yield return TreeAttention(2, 1, 128, 8, 5, 50, 6, [], new(0f, 0f, 3));
        yield return TreeAttention(4, 2, 64, 16, 20, 100, 40, [(3, 1)], new(0f, 0f, 24));   // mask words 2 and 3 too
        foreach (var c in SampleCases()) yield return c;
        foreach (var c in TopKCases()) yield return c;
        foreach (var c in ScoreCases()) yield return c;
    }

    private static IEnumerable<OpCase> TopKCases()
    {
        // n up to a 128k context, k from 1 to n; few distinct values (ties everywhere, signed zeros, infinities) and
        // distinct ones; sizes that are and are not multiples of the kernel's 1024 threads.
        yield return TopKPrune(1, 1, ties: false);
        yield return TopKPrune(1000, 1, ties: true);
        yield return TopKPrune(1000, 1000, ties: true);
        yield return TopKPrune(4097, 2048, ties: true);
        yield return TopKPrune(4096, 777, ties: false);
        yield return TopKPrune(131072, 32768, ties: true);
        yield return TopKPrune(131072, 131071, ties: false);
    }

    private static OpCase TopKPrune(int n, int k, bool ties)
    {
        string name = $"topk_prune n {n} k {k}{(ties ? " ties" : "")}";
        var rng = new Random(Seed(name));
        float[] values = [-0f, 0f, 1f, -1f, 0.5f, float.PositiveInfinity, float.NegativeInfinity, 3f];
        var x = Enumerable.Range(0, n).Select(_ => ties ? values[rng.Next(values.Length)] : (float)(rng.NextDouble() * 2 - 1)).ToArray();
        return new OpCase("topk_prune", name, SameToken,
            b =>
            {
                var picked = new int[k];
                if (b is CudaBackend cuda)
                {
                    using var xa = OpInputs.Upload(cuda, x);
                    cuda.TopK(xa, n, k, picked);
                }
                else Kv.TopK.Select(x, k, picked);
                return [.. picked.Select(i => (float)i)];
            },
            () => [.. Enumerable.Range(0, n).OrderByDescending(i => x[i]).ThenBy(i => i).Take(k).Order().Select(i => (float)i)]);
    }

    private static IEnumerable<OpCase> SampleCases()
    {
        // Distinct logits (a shuffled Zipf-like ladder, so the draw spreads over several candidates and no two
        // candidates tie: the CPU's sort does not order ties); vocabularies that are and are not multiples of the
        // kernel's 1024 threads; top-k off over a small vocabulary; top-k 1; greedy with a tied maximum.
        yield return Sample(50000, 0.8f, 40, 0.95f, 0.05f, 0.37, 1.0f, false);
        yield return Sample(32000, 1.5f, 1000, 1f, 0f, 0.91, 0.5f, false);
        yield return Sample(32003, 1.0f, 200, 0.5f, 0f, 0.5, 1.0f, false);
        yield return Sample(1000, 0.7f, 0, 0.9f, 0f, 0.123, 0.3f, false);
        yield return Sample(128256, 1.0f, 1, 1f, 0f, 0.99, 1.0f, false);
        yield return Sample(50000, 0f, 40, 0.95f, 0.05f, 0.5, 1.0f, true);
        yield return SampleRows();
    }

    private static OpCase Sample(int n, float temperature, int topK, float topP, float minP, double u, float steep, bool tiedMax)
    {
        string name = $"sample_topk n {n} t {temperature} k {topK} p {topP} minp {minP} u {u}{(tiedMax ? " tied max" : "")}";
        var rank = Enumerable.Range(0, n).ToArray();
        new Random(Seed(name)).Shuffle(rank);
        var logits = rank.Select(r => 5f - steep * MathF.Log(r + 1)).ToArray();
        if (tiedMax) logits[n / 3] = logits[2 * n / 3] = 6f;  // the CPU's ArgMax takes the first: n / 3
        var options = new Sampling.SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, Seed = 1 };
        return new OpCase("sample_topk", name, SameToken,
            b =>
            {
                if (b is CudaBackend cuda)
                {
                    using var la = OpInputs.Upload(cuda, logits);
                    return [cuda.SampleTopK(la, n, topK, topP, minP, temperature, u)];
                }
                return [new Sampling.Sampler(options, n).Sample((float[])logits.Clone(), u)];
            },
            () => [NaiveDraw(logits, temperature, topK, topP, minP, u)]);
    }

    // The definition: candidates by logit (ties: lower index), top-k, softmax for top-p and min-p, then the
    // temperature and the draw, in double.
    private static float NaiveDraw(float[] logits, float temperature, int topK, float topP, float minP, double u)
    {
        int n = logits.Length;
        var order = Enumerable.Range(0, n).OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();
        if (temperature <= 0) return order[0];
        int k = topK > 0 && topK < n ? topK : n;
        double max = logits[order[0]];
        var p = order.Take(k).Select(i => Math.Exp(logits[i] - max)).ToArray();
        double sum = p.Sum(), cum = 0;
        if (topP < 1)
            for (int i = 0; i < k; i++)
                if ((cum += p[i] / sum) >= topP) { k = i + 1; break; }
        if (minP > 0)
        {
            int keep = 1;
            while (keep < k && p[keep] >= p[0] * minP) keep++;
            k = keep;
        }
        var w = order.Take(k).Select(i => Math.Exp((logits[i] - max) / temperature)).ToArray();
        double target = u * w.Sum(), acc = 0;
        for (int i = 0; i < k; i++)
            if (target < (acc += w[i])) return order[i];
        return order[k - 1];
    }

    // Several draws in one launch (a serving step): 5 rows of logits over an odd vocabulary, 4 requests in scrambled
    // row order with different options (one greedy), one row not drawn from.
    private static OpCase SampleRows()
    {
        const int n = 32003, rows = 5;
        const string name = "sample_topk rows 4 of 5 n 32003";
        var rng = new Random(Seed(name));
        var logits = new float[rows * n];
        for (int r = 0; r < rows; r++)
        {
            var rank = Enumerable.Range(0, n).ToArray();
            rng.Shuffle(rank);
            for (int i = 0; i < n; i++) logits[r * n + i] = 5f - (0.4f + 0.3f * r) * MathF.Log(rank[i] + 1);
        }
        SampleRequest[] requests =
        [
            new(3, 40, 0.95f, 0.05f, 0.8f, 0.37), new(0, 0, 1f, 0f, 0f, 0.5), new(4, 1000, 0.9f, 0f, 1.3f, 0.91),
            new(1, 200, 1f, 0.02f, 1.0f, 0.05),
        ];
        float[] Row(int r) => logits.AsSpan(r * n, n).ToArray();
        return new OpCase("sample_topk", name, SameToken,
            b =>
            {
                if (b is CudaBackend cuda)
                {
                    using var la = OpInputs.Upload(cuda, logits);
                    var tokens = new int[requests.Length];
                    cuda.SampleRows(la, n, rows, requests, tokens);
                    return [.. tokens.Select(t => (float)t)];
                }
                return [.. requests.Select(q => (float)new Sampling.Sampler(
                    new Sampling.SamplingOptions { Temperature = q.Temperature, TopK = q.TopK, TopP = q.TopP, MinP = q.MinP, Seed = 1 }, n)
                    .Sample(Row(q.Row), q.Uniform))];
            },
            () => [.. requests.Select(q => NaiveDraw(Row(q.Row), q.Temperature, q.TopK, q.TopP, q.MinP, q.Uniform))]);
    }

    // A stable seed per case (FNV-1a of the name): string.GetHashCode is randomized per process.
    private static int Seed(string name)
    {
        uint h = 2166136261;
        foreach (char ch in name) h = (h ^ ch) * 16777619;
        return (int)(h & 0x7fffffff);
    }

    private static OpCase Embed(GgmlType type, int vocab, int dim)
    {
        string name = $"embed {type.ToString().ToLowerInvariant()} vocab {vocab} dim {dim}";
        int[] tokens = [0, 7, vocab - 1, 7];
        int seed = Seed(name);
        return new OpCase("embed", name, Exact,
            b =>
            {
                using var w = new RandomWeight(type, vocab, dim, seed);
                var bw = b.Prepare(w.Tensor);
                using var o = b.Allocate(tokens.Length * dim);
                b.Embed(bw, tokens, o);
                return OpInputs.Read(b, o, tokens.Length * dim);
            },
            () =>
            {
                using var w = new RandomWeight(type, vocab, dim, seed);
                var o = new float[tokens.Length * dim];
                for (int i = 0; i < tokens.Length; i++) Dequantizer.DequantizeRow(type, w.Tensor.Row(tokens[i]), o.AsSpan(i * dim, dim));
                return o;
            });
    }

    private static OpCase RmsNorm(int rows, int dim)
    {
        string name = $"rmsnorm {rows}x{dim}";
        var x = OpInputs.Floats(Seed(name), rows * dim, 3f);
        var w = OpInputs.Floats(Seed(name) + 1, dim);
        const float eps = 1e-5f;
        return new OpCase("rmsnorm", name, Float32,
            b =>
            {
                using var xa = OpInputs.Upload(b, x);
                using var ya = b.Allocate(rows * dim);
                b.RmsNorm(xa, b.Prepare(w), ya, rows, eps);
                return OpInputs.Read(b, ya, rows * dim);
            },
            () =>
            {
                var y = new float[rows * dim];
                for (int r = 0; r < rows; r++)
                {
                    double ss = 0;
                    for (int i = 0; i < dim; i++) ss += (double)x[r * dim + i] * x[r * dim + i];
                    double s = 1 / Math.Sqrt(ss / dim + eps);
                    for (int i = 0; i < dim; i++) y[r * dim + i] = (float)(x[r * dim + i] * s * w[i]);
                }
                return y;
            });
    }

    // Factors from 1 to about 32, not monotonic, as LongRoPE's are not.
    private static float[] ScaledFactors(int n) => [.. Enumerable.Range(0, n).Select(i => 1f + 31f * (i * 7 % n) / n)];

    private static OpCase Rope(RopeLayout layout, int rows, int heads, int hd, int start, float theta,
        float[]? factors = null, float freqScale = 1f, float attnFactor = 1f)
    {
        string name = $"rope {(layout == RopeLayout.AdjacentPairs ? "adjacent" : "half")} {rows}x{heads}x{hd} pos {start} theta {theta}"
            + (factors != null ? " factors" : "") + (freqScale != 1f ? $" scale {freqScale}" : "") + (attnFactor != 1f ? $" attn {attnFactor}" : "");
        var x = OpInputs.Floats(Seed(name), rows * heads * hd);
        return new OpCase("rope", name, Float32,
            b =>
            {
                using var xa = OpInputs.Upload(b, x);
                var batch = new RaggedBatch(rows, 1, 1, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(start + rows)));
                batch.Add(new int[rows], start, [0]);
                var f = factors == null ? null : b.Prepare(factors);
                b.Rope(xa, batch, heads, hd, new RopeFrequencies(theta, freqScale, f, attnFactor), layout);
                return OpInputs.Read(b, xa, x.Length);
            },
            () => NaiveRope(x, [.. Enumerable.Range(start, rows)], heads, hd, theta, layout, factors, freqScale, attnFactor));
    }

    private static OpCase RaggedRope(RopeLayout layout, int heads, int hd, float theta, (int Start, int Rows)[] seqs)
    {
        string name = $"rope ragged {(layout == RopeLayout.AdjacentPairs ? "adjacent" : "half")} {heads}x{hd} seqs {Describe(seqs)} theta {theta}";
        int rows = seqs.Sum(q => q.Rows);
        var x = OpInputs.Floats(Seed(name), rows * heads * hd);
        int[] positions = [.. seqs.SelectMany(q => Enumerable.Range(q.Start, q.Rows))];
        return new OpCase("rope", name, Float32,
            b =>
            {
                // Rope reads only the positions; one block of the largest position's size covers every table.
                int block = 1 << 10, blocksPerSeq = seqs.Max(q => q.Start + q.Rows) / block + 1;
                var batch = new RaggedBatch(rows, seqs.Length, seqs.Length * blocksPerSeq, block);
                var table = Enumerable.Range(0, blocksPerSeq).ToArray();
                foreach (var q in seqs) batch.Add(new int[q.Rows], q.Start, table);
                using var xa = OpInputs.Upload(b, x);
                b.Rope(xa, batch, heads, hd, new RopeFrequencies(theta), layout);
                return OpInputs.Read(b, xa, x.Length);
            },
            () => NaiveRope(x, positions, heads, hd, theta, layout));
    }

    private static string Describe((int Start, int Rows)[] seqs) => string.Join(",", seqs.Select(q => $"{q.Rows}@{q.Start}"));

    private static string Describe(AttentionVariant v) =>
        (v.Scale > 0 ? $" scale {v.Scale}" : "") + (v.SoftCap > 0 ? $" cap {v.SoftCap}" : "") + (v.Window > 0 ? $" window {v.Window}" : "");

    // Row r of x at position positions[r], from the definition.
    private static float[] NaiveRope(float[] x, int[] positions, int heads, int hd, float theta, RopeLayout layout,
        float[]? factors = null, float freqScale = 1f, float attnFactor = 1f)
    {
        int rows = positions.Length;
        var y = (float[])x.Clone();
        float scale = MathF.Pow(theta, -2.0f / hd);
        for (int r = 0; r < rows; r++)
        {
            float t = positions[r];  // ggml's definition: the angle built by float multiplications
            for (int i = 0; i < hd / 2; i++, t *= scale)
            {
                float a = t / (factors?[i] ?? 1f) * freqScale;   // the angle as ggml rounds it
                double c = Math.Cos(a) * attnFactor, s = Math.Sin(a) * attnFactor;
                for (int h = 0; h < heads; h++)
                {
                    int b0 = (r * heads + h) * hd;
                    int i0 = layout == RopeLayout.AdjacentPairs ? b0 + 2 * i : b0 + i;
                    int i1 = layout == RopeLayout.AdjacentPairs ? i0 + 1 : i0 + hd / 2;
                    double x0 = x[i0], x1 = x[i1];
                    y[i0] = (float)(x0 * c - x1 * s);
                    y[i1] = (float)(x0 * s + x1 * c);
                }
            }
        }
        return y;
    }

    private static OpCase SwiGlu(int n)
    {
        string name = $"swiglu {n}";
        var g = OpInputs.Floats(Seed(name), n, 6f);
        var u = OpInputs.Floats(Seed(name) + 1, n, 2f);
        return new OpCase("swiglu", name, Float32,
            b =>
            {
                using var ga = OpInputs.Upload(b, g);
                using var ua = OpInputs.Upload(b, u);
                b.SwiGlu(ga, ua, n);
                return OpInputs.Read(b, ga, n);
            },
            () => [.. Enumerable.Range(0, n).Select(i => (float)(g[i] / (1 + Math.Exp(-g[i])) * u[i]))]);
    }

    // The GELU as llama.cpp's CPU table gives it: of x rounded to F16, rounded to F16 (so a backend that computed it
    // exactly would be off by up to half an F16 step: F16Act).
    private static OpCase GeGlu(int n)
    {
        string name = $"geglu {n}";
        var g = OpInputs.Floats(Seed(name), n, 12f);   // past ±10 too, where the GELU is 0 or x
        var u = OpInputs.Floats(Seed(name) + 1, n, 2f);
        static double Gelu(double x)
        {
            if (x <= -10) return 0;
            if (x >= 10) return x;
            double h = (double)(Half)x;
            return (double)(Half)(0.5 * h * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * h * (1 + 0.044715 * h * h))));
        }
        return new OpCase("geglu", name, F16Act,
            b =>
            {
                using var ga = OpInputs.Upload(b, g);
                using var ua = OpInputs.Upload(b, u);
                b.GeGlu(ga, ua, n);
                return OpInputs.Read(b, ga, n);
            },
            () => [.. Enumerable.Range(0, n).Select(i => (float)(Gelu(g[i]) * u[i]))]);
    }

    private static OpCase SoftCap(int n, float cap)
    {
        string name = $"soft_cap {n} cap {cap}";
        var x = OpInputs.Floats(Seed(name), n, 10f);
        return new OpCase("soft_cap", name, Float32,
            b =>
            {
                using var xa = OpInputs.Upload(b, x);
                b.SoftCap(xa, cap, n);
                return OpInputs.Read(b, xa, n);
            },
            () => [.. x.Select(v => (float)(cap * Math.Tanh(v / (double)cap)))]);
    }

    private static OpCase Scale(int n, float factor)
    {
        string name = $"scale {n} by {factor}";
        var x = OpInputs.Floats(Seed(name), n);
        return new OpCase("scale", name, Exact,
            b =>
            {
                using var xa = OpInputs.Upload(b, x);
                b.Scale(xa, factor, n);
                return OpInputs.Read(b, xa, n);
            },
            () => [.. x.Select(v => v * factor)]);
    }

    private static OpCase Add(int n)
    {
        string name = $"add {n}";
        var a = OpInputs.Floats(Seed(name), n);
        var x = OpInputs.Floats(Seed(name) + 1, n);
        return new OpCase("add", name, Exact,
            b =>
            {
                using var aa = OpInputs.Upload(b, a);
                using var xa = OpInputs.Upload(b, x);
                b.Add(aa, xa, n);
                return OpInputs.Read(b, aa, n);
            },
            () => [.. Enumerable.Range(0, n).Select(i => a[i] + x[i])]);
    }

    private static OpCase AddBias(int rows, int cols)
    {
        string name = $"add_bias {rows}x{cols}";
        var x = OpInputs.Floats(Seed(name), rows * cols);
        var bias = OpInputs.Floats(Seed(name) + 1, cols);
        return new OpCase("add_bias", name, Exact,
            b =>
            {
                using var xa = OpInputs.Upload(b, x);
                var bv = b.Prepare(bias);   // vectors live as long as the backend
                b.AddBias(xa, bv, rows);
                return OpInputs.Read(b, xa, rows * cols);
            },
            () => [.. Enumerable.Range(0, rows * cols).Select(i => x[i] + bias[i % cols])]);
    }

    private static OpCase MatMul(GgmlType type, int rows, int outRows, int cols)
    {
        string name = $"matmul {type.ToString().ToLowerInvariant()} {rows}x{outRows}x{cols}";
        int seed = Seed(name);
        var x = OpInputs.Floats(seed + 1, rows * cols);
        double tol = type switch { GgmlType.F32 => Float32, GgmlType.F16 => F16Act, GgmlType.BF16 => BF16Act, _ => Q8Act };
        return new OpCase("matmul", name, tol,
            b =>
            {
                using var w = new RandomWeight(type, outRows, cols, seed);
                var bw = b.Prepare(w.Tensor);
                using var xa = OpInputs.Upload(b, x);
                using var ya = b.Allocate(rows * outRows);
                b.MatMul(bw, xa, ya, rows);
                return OpInputs.Read(b, ya, rows * outRows);
            },
            () =>
            {
                using var w = new RandomWeight(type, outRows, cols, seed);
                var wf = w.Tensor.ToFloat32();
                var y = new float[rows * outRows];
                for (int r = 0; r < rows; r++)
                    for (int o = 0; o < outRows; o++)
                    {
                        double s = 0;
                        for (int c = 0; c < cols; c++) s += (double)wf[(long)o * cols + c] * x[r * cols + c];
                        y[r * outRows + o] = (float)s;
                    }
                return y;
            });
    }

    // One sequence in 16-position blocks (a RunState's cache).
    private static OpCase Attention(int heads, int kvHeads, int hd, int rows, int start) =>
        PagedAttention(heads, kvHeads, hd, 16, [(start, rows)]);

    // The definition: F16 cache, q rounded to F16 (llama.cpp's K·q in the cache type), exact softmax. Rows
    // qRow .. qRow + rows - 1 of q, at positions start .., over k and v (positions, kvHeads * hd) of their sequence.
    // With a variant: its scale, cap · tanh(s / cap), and only the last Window positions (the row's own included).
    private static void NaiveAttention(float[] q, int qRow, float[] k, float[] v, int rows, int start, int heads, int kvHeads, int hd, float[] o,
        AttentionVariant variant = default)
    {
        int kvDim = kvHeads * hd;
        double scale = variant.Scale > 0 ? variant.Scale : 1 / Math.Sqrt(hd);
        for (int r = qRow; r < qRow + rows; r++)
            for (int h = 0; h < heads; h++)
            {
                int n = start + (r - qRow) + 1, kvh = h / (heads / kvHeads);
                int lo = variant.Window > 0 ? Math.Max(0, n - variant.Window) : 0;
                var s = new double[n];
                for (int p = 0; p < n; p++)
                {
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += (double)(float)(Half)q[(r * heads + h) * hd + i] * (float)(Half)k[p * kvDim + kvh * hd + i];
                    s[p] = d * scale;
                    if (variant.SoftCap > 0) s[p] = variant.SoftCap * Math.Tanh(s[p] / variant.SoftCap);
                    if (p < lo) s[p] = double.NegativeInfinity;
                }
                double m = s.Max(), sum = 0;
                for (int p = 0; p < n; p++) sum += s[p] = Math.Exp(s[p] - m);
                for (int i = 0; i < hd; i++)
                {
                    double acc = 0;
                    for (int p = 0; p < n; p++) acc += s[p] / sum * (float)(Half)v[p * kvDim + kvh * hd + i];
                    o[(r * heads + h) * hd + i] = (float)acc;
                }
            }
    }

    private static LlamaConfig AttentionConfig(int heads, int kvHeads, int hd, int positions) => new()
    {
        Architecture = "llama", VocabSize = 1, Dim = heads * hd, FfnDim = 1, Layers = 1, Heads = heads, KvHeads = kvHeads,
        HeadDim = hd, NormEps = 1e-5f, RopeTheta = 10000f, RopeLayout = RopeLayout.AdjacentPairs, ContextLength = positions,
        TiedEmbeddings = true,
    };

    /// <summary>Block tables for <paramref name="seqs"/>: each sequence's blocks drawn from a shuffled pool with
    /// <paramref name="spare"/> blocks to spare, so no sequence's blocks are contiguous or in order.</summary>
    private static (int[][] Tables, int[] Need, int Blocks) ShuffledTables((int Start, int Rows)[] seqs, int block, int spare, int seed)
    {
        int[] need = [.. seqs.Select(x => (x.Start + x.Rows + block - 1) / block)];
        int blocks = need.Sum() + spare;
        var order = Enumerable.Range(0, blocks).ToArray();
        new Random(seed).Shuffle(order);
        var tables = new int[seqs.Length][];
        for (int i = 0, used = 0; i < seqs.Length; used += need[i], i++) tables[i] = order[used..(used + need[i])];
        return (tables, need, blocks);
    }

    /// <summary>Per sequence: keys and values of all its positions (history, then this step's rows); and the step's
    /// queries.</summary>
    private static (float[][] K, float[][] V, float[] Q) AttentionInputs((int Start, int Rows)[] seqs, int kvDim, int queries, int seed) =>
        ([.. seqs.Select((x, i) => OpInputs.Floats(seed + 3 * i, (x.Start + x.Rows) * kvDim, 2f))],
         [.. seqs.Select((x, i) => OpInputs.Floats(seed + 3 * i + 1, (x.Start + x.Rows) * kvDim))],
         OpInputs.Floats(seed - 1, queries, 2f));

    // The step's attention on the backend: q uploaded, output read back.
    private static float[] Attend(IBackend b, float[] q, KvCache cache, RaggedBatch batch, int outputs, AttentionVariant variant = default)
    {
        using var qa = OpInputs.Upload(b, q);
        using var o = b.Allocate(outputs);
        b.Attention(qa, cache, 0, batch, o, variant);
        return OpInputs.Read(b, o, outputs);
    }

    private static OpCase PagedAttention(int heads, int kvHeads, int hd, int block, (int Start, int Rows)[] seqs, AttentionVariant variant = default)
    {
        string name = $"attention paged {heads}/{kvHeads} heads hd {hd} block {block} seqs {Describe(seqs)}{Describe(variant)}";
        int kvDim = kvHeads * hd, n = seqs.Length, seed = Seed(name);
        int rows = seqs.Sum(x => x.Rows), history = seqs.Sum(x => x.Start);
        var (k, v, q) = AttentionInputs(seqs, kvDim, rows * heads * hd, seed);
        var (tables, need, blocks) = ShuffledTables(seqs, block, 5, seed);
        var config = AttentionConfig(heads, kvHeads, hd, seqs.Max(x => x.Start + x.Rows));
        return new OpCase("attention", name, F16Act,
            b =>
            {
                using var cache = b.CreatePagedKvCache(config, blocks, block);
                // First the history (positions 0 .. start - 1 of each sequence that has one) as one ragged batch, then
                // this step's rows: stored, then attended, as LlamaModel.Forward does.
                if (history > 0)
                {
                    var hb = new RaggedBatch(history, n, need.Sum(), block);
                    var hk = new List<float>();
                    var hv = new List<float>();
                    for (int i = 0; i < n; i++)
                    {
                        if (seqs[i].Start == 0) continue;
                        hb.Add(new int[seqs[i].Start], 0, tables[i]);
                        hk.AddRange(k[i].AsSpan(0, seqs[i].Start * kvDim).ToArray());
                        hv.AddRange(v[i].AsSpan(0, seqs[i].Start * kvDim).ToArray());
                    }
                    using var hka = OpInputs.Upload(b, [.. hk]);
                    using var hva = OpInputs.Upload(b, [.. hv]);
                    b.StoreKv(cache, 0, hka, hva, hb);
                }
                var batch = new RaggedBatch(rows, n, need.Sum(), block);
                var sk = new List<float>();
                var sv = new List<float>();
                for (int i = 0; i < n; i++)
                {
                    batch.Add(new int[seqs[i].Rows], seqs[i].Start, tables[i]);
                    sk.AddRange(k[i].AsSpan(seqs[i].Start * kvDim, seqs[i].Rows * kvDim).ToArray());
                    sv.AddRange(v[i].AsSpan(seqs[i].Start * kvDim, seqs[i].Rows * kvDim).ToArray());
                }
                using var ka = OpInputs.Upload(b, [.. sk]);
                using var va = OpInputs.Upload(b, [.. sv]);
                b.StoreKv(cache, 0, ka, va, batch);
                return Attend(b, q, cache, batch, rows * heads * hd, variant);
            },
            () =>
            {
                var o = new float[rows * heads * hd];
                for (int i = 0, row = 0; i < n; row += seqs[i].Rows, i++)
                    NaiveAttention(q, row, k[i], v[i], seqs[i].Rows, seqs[i].Start, heads, kvHeads, hd, o, variant);
                return o;
            });
    }

    /// <summary>Stores keys <paramref name="k"/> and values <paramref name="v"/> (every sequence's positions 0 .. start +
    /// rows, one sequence after another) into <paramref name="layer"/> of the cache as chains: where a row's keys go is
    /// its cache position, whether the step then attends as a chain, a tree or with hidden rows.</summary>
    private static void StoreAll(IBackend b, KvCache cache, int layer, (int Start, int Rows)[] seqs, int[][] tables, int block, float[] k, float[] v)
    {
        var all = new RaggedBatch(seqs.Sum(x => x.Start + x.Rows), seqs.Length, tables.Sum(t => t.Length), block);
        for (int i = 0; i < seqs.Length; i++) all.Add(new int[seqs[i].Start + seqs[i].Rows], 0, tables[i]);
        using var ka = OpInputs.Upload(b, k);
        using var va = OpInputs.Upload(b, v);
        b.StoreKv(cache, layer, ka, va, all);
    }

    /// <summary>A random tree of <paramref name="nodes"/> rows and depth at most <paramref name="depth"/> (a chain of
    /// that depth first, so the depth is reached, then random parents among rows not yet at the limit).</summary>
    internal static int[] RandomTree(int nodes, int depth, int seed)
    {
        var rng = new Random(seed);
        var parents = new int[nodes];
        var level = new int[nodes];
        parents[0] = -1;
        for (int i = 1; i < nodes; i++)
        {
            int p;
            if (i < depth) p = i - 1;  // the spine
            else
                do p = rng.Next(i); while (level[p] + 1 >= depth);
            parents[i] = p;
            level[i] = level[p] + 1;
        }
        return parents;
    }

    private static OpCase TreeAttention(int heads, int kvHeads, int hd, int block, int prefix, int nodes, int depth, (int Start, int Rows)[] chains,
        AttentionVariant variant = default)
    {
        string name = $"attention tree {heads}/{kvHeads} heads hd {hd} block {block} prefix {prefix} nodes {nodes} depth {depth} chains {Describe(chains)}{Describe(variant)}";
        int kvDim = kvHeads * hd, seed = Seed(name);
        var parents = RandomTree(nodes, depth, seed);
        // Sequence 0 is the tree (prefix cached, then the nodes at cache positions prefix ..), the rest are chains.
        var seqs = new[] { (Start: prefix, Rows: nodes) }.Concat(chains).ToArray();
        int n = seqs.Length, rows = seqs.Sum(x => x.Rows);
        var (k, v, q) = AttentionInputs(seqs, kvDim, rows * heads * hd, seed);
        var (tables, need, blocks) = ShuffledTables(seqs, block, 3, seed);
        var config = AttentionConfig(heads, kvHeads, hd, seqs.Max(x => x.Start + x.Rows));
        return new OpCase("attention", name, F16Act,
            b =>
            {
                using var cache = b.CreatePagedKvCache(config, blocks, block);
                // Every sequence's keys and values, history and this step's alike, stored as chains first (where a
                // tree row's keys go is its cache position: the same slots); then the step attends with the tree.
                StoreAll(b, cache, 0, seqs, tables, block, [.. k.SelectMany(x => x)], [.. v.SelectMany(x => x)]);
                var batch = new RaggedBatch(rows, n, need.Sum(), block);
                batch.AddTree(new int[nodes], parents, prefix, tables[0]);
                for (int i = 1; i < n; i++) batch.Add(new int[seqs[i].Rows], seqs[i].Start, tables[i]);
                return Attend(b, q, cache, batch, rows * heads * hd, variant);
            },
            () =>
            {
                var o = new float[rows * heads * hd];
                // A tree row attends like a chain over just the prefix and its path: gather those keys in order.
                for (int r = 0; r < nodes; r++)
                {
                    var path = new List<int>();
                    for (int a = r; a >= 0; a = parents[a]) path.Insert(0, a);
                    int len = prefix + path.Count;
                    var pk = new float[len * kvDim];
                    var pv = new float[len * kvDim];
                    Array.Copy(k[0], pk, prefix * kvDim);
                    Array.Copy(v[0], pv, prefix * kvDim);
                    for (int j = 0; j < path.Count; j++)
                    {
                        Array.Copy(k[0], (prefix + path[j]) * kvDim, pk, (prefix + j) * kvDim, kvDim);
                        Array.Copy(v[0], (prefix + path[j]) * kvDim, pv, (prefix + j) * kvDim, kvDim);
                    }
                    var qr = q.AsSpan(r * heads * hd, heads * hd).ToArray();
                    var or = new float[heads * hd];
                    NaiveAttention(qr, 0, pk, pv, 1, len - 1, heads, kvHeads, hd, or, variant);
                    or.CopyTo(o, r * heads * hd);
                }
                for (int i = 1, row = nodes; i < n; row += seqs[i].Rows, i++)
                    NaiveAttention(q, row, k[i], v[i], seqs[i].Rows, seqs[i].Start, heads, kvHeads, hd, o, variant);
                return o;
            });
    }
}
