using Tessera.Backends.Cuda;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Backends.OpSuite;

/// <summary>
/// The op test list: every IBackend op over swept shapes and types, including odd sizes and sizes that are not
/// multiples of a block or warp. Tolerances are per op and type and say where the difference comes from.
/// </summary>
public static class OpCases
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
        foreach (int n in new[] { 1, 1000, 8195 }) yield return SwiGlu(n);
        foreach (int n in new[] { 1, 4097 }) yield return Add(n);
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
        foreach (var c in SampleCases()) yield return c;
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
            () =>
            {
                // The definition: candidates by logit (ties: lower index), top-k, softmax for top-p and min-p,
                // then the temperature and the draw, in double.
                var order = Enumerable.Range(0, n).OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();
                if (temperature <= 0) return [order[0]];
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
                    if (target < (acc += w[i])) return [order[i]];
                return [order[k - 1]];
            });
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

    private static OpCase Rope(RopeLayout layout, int rows, int heads, int hd, int start, float theta)
    {
        string name = $"rope {(layout == RopeLayout.AdjacentPairs ? "adjacent" : "half")} {rows}x{heads}x{hd} pos {start} theta {theta}";
        var x = OpInputs.Floats(Seed(name), rows * heads * hd);
        return new OpCase("rope", name, Float32,
            b =>
            {
                using var xa = OpInputs.Upload(b, x);
                b.Rope(xa, rows, heads, hd, start, theta, layout);
                return OpInputs.Read(b, xa, x.Length);
            },
            () =>
            {
                var y = (float[])x.Clone();
                float scale = MathF.Pow(theta, -2.0f / hd);
                for (int r = 0; r < rows; r++)
                {
                    float t = start + r;  // ggml's definition: the angle built by float multiplications
                    for (int i = 0; i < hd / 2; i++, t *= scale)
                    {
                        double c = Math.Cos(t), s = Math.Sin(t);
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
            });
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

    private static OpCase Attention(int heads, int kvHeads, int hd, int rows, int start)
    {
        string name = $"attention {heads}/{kvHeads} heads hd {hd} rows {rows} pos {start}";
        int positions = start + rows, kvDim = kvHeads * hd;
        var k = OpInputs.Floats(Seed(name), positions * kvDim, 2f);
        var v = OpInputs.Floats(Seed(name) + 1, positions * kvDim);
        var q = OpInputs.Floats(Seed(name) + 2, rows * heads * hd, 2f);
        var config = new LlamaConfig
        {
            Architecture = "llama", VocabSize = 1, Dim = heads * hd, FfnDim = 1, Layers = 1, Heads = heads, KvHeads = kvHeads,
            HeadDim = hd, NormEps = 1e-5f, RopeTheta = 10000f, RopeLayout = RopeLayout.AdjacentPairs, ContextLength = positions,
            TiedEmbeddings = true,
        };
        return new OpCase("attention", name, F16Act,
            b =>
            {
                using var cache = b.CreateKvCache(config, positions);
                using var ka = OpInputs.Upload(b, k);
                using var va = OpInputs.Upload(b, v);
                b.StoreKv(cache, 0, ka, va, positions, 0);
                using var qa = OpInputs.Upload(b, q);
                using var o = b.Allocate(rows * heads * hd);
                b.Attention(qa, cache, 0, rows, start, o);
                return OpInputs.Read(b, o, rows * heads * hd);
            },
            () =>
            {
                // The definition: F16 cache, q rounded to F16 (llama.cpp's K·q in the cache type), exact softmax.
                var o = new float[rows * heads * hd];
                double scale = 1 / Math.Sqrt(hd);
                for (int r = 0; r < rows; r++)
                    for (int h = 0; h < heads; h++)
                    {
                        int n = start + r + 1, kvh = h / (heads / kvHeads);
                        var s = new double[n];
                        for (int p = 0; p < n; p++)
                        {
                            double d = 0;
                            for (int i = 0; i < hd; i++)
                                d += (double)(float)(Half)q[(r * heads + h) * hd + i] * (float)(Half)k[p * kvDim + kvh * hd + i];
                            s[p] = d * scale;
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
                return o;
            });
    }
}
