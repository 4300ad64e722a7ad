using NUnit.Framework;
using Tessera.Backends;
using Tessera.Backends.Cpu;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Tests.Backends;

/// <summary>The vectorized attention path against the general one and both against attention computed in double; and
/// the property serving relies on: a row's result does not depend on the rows computed with it.</summary>
[TestFixture, NonParallelizable] // flips CpuAttention.VectorizedRows
public class CpuAttentionTests
{
    private static LlamaConfig Config(int heads, int kvHeads, int headDim) => new()
    {
        Architecture = "llama", VocabSize = 8, Dim = heads * headDim, FfnDim = 8, Layers = 1, Heads = heads,
        KvHeads = kvHeads, HeadDim = headDim, NormEps = 1e-5f, RopeTheta = 10000, RopeLayout = RopeLayout.AdjacentPairs,
        ContextLength = 512, TiedEmbeddings = true,
    };

    private static (float[] Q, Half[] K, Half[] V) Inputs(LlamaConfig c, int rows, int positions, int seed)
    {
        var rng = new Random(seed);
        var q = new float[rows * c.Heads * c.HeadDim];
        for (int i = 0; i < q.Length; i++) q[i] = (float)(rng.NextDouble() * 4 - 2);
        var k = new Half[positions * c.KvDim];
        var v = new Half[positions * c.KvDim];
        for (int i = 0; i < k.Length; i++) { k[i] = (Half)(rng.NextDouble() * 2 - 1); v[i] = (Half)(rng.NextDouble() * 2 - 1); }
        return (q, k, v);
    }

    private static float[] Run(bool vectorized, Func<float[]> compute)
    {
        bool was = CpuAttention.VectorizedRows;
        CpuAttention.VectorizedRows = vectorized;
        try { return compute(); }
        finally { CpuAttention.VectorizedRows = was; }
    }

    // Head sizes: one 16-lane chunk, the common 64 and 128 (four-register blocks), 80 (a block and a single chunk).
    [TestCase(4, 4, 16, 5, 0)]
    [TestCase(4, 4, 32, 70, 0)] // three blocks of rows from position 0
    [TestCase(6, 2, 64, 37, 3)]
    [TestCase(8, 2, 80, 9, 100)]
    [TestCase(4, 1, 128, 3, 250)]
    public void Contiguous_rows_agree_with_the_general_path(int heads, int kvHeads, int headDim, int rows, int startPos)
    {
        var c = Config(heads, kvHeads, headDim);
        var (q, k, v) = Inputs(c, rows, startPos + rows, heads * 31 + rows);
        float[] Compute() { var o = new float[q.Length]; CpuAttention.Compute(q, k, v, c, rows, startPos, o); return o; }
        float[] fast = Run(true, Compute), general = Run(false, Compute);
        AssertAgree(fast, general);
        AssertNearDouble(c, q, k, v, rows, r => startPos + r, p => p, fast);
        AssertNearDouble(c, q, k, v, rows, r => startPos + r, p => p, general);
    }

    // Gemma's variants (a soft cap, another scale, sliding windows of 1, 7, 64 and 80 positions, the last two
    // reaching past the vectorized path's 64-position tiles) on both paths: the general path follows the definition
    // position by position, so the vectorized one's skipped tiles must change nothing.
    [TestCase(6, 2, 64, 37, 100, 0f, 30f, 7)]
    [TestCase(4, 4, 32, 70, 0, 0.05f, 0f, 64)]
    [TestCase(8, 2, 80, 9, 200, 0f, 1f, 80)]
    [TestCase(4, 1, 128, 3, 250, 0f, 0f, 1)]
    public void Layer_variants_agree_between_the_paths(int heads, int kvHeads, int headDim, int rows, int startPos, float scale, float cap, int window)
    {
        Assume.That(F16Wide.Lanes, Is.EqualTo(16), "the vectorized path needs AVX-512; without it both runs take the general one");
        var c = Config(heads, kvHeads, headDim);
        var variant = new AttentionVariant(scale, cap, window);
        var (q, k, v) = Inputs(c, rows, startPos + rows, heads * 17 + rows);
        float[] Compute() { var o = new float[q.Length]; CpuAttention.Compute(q, k, v, c, rows, startPos, o, variant); return o; }
        float[] fast = Run(true, Compute), general = Run(false, Compute);
        AssertAgree(fast, general);
        var plain = new float[q.Length];
        CpuAttention.Compute(q, k, v, c, rows, startPos, plain);
        Assert.That(fast, Is.Not.EqualTo(plain), "the variant changes the output");
    }

    [Test]
    public void A_windowed_tree_row_gets_what_decoding_along_its_path_gets()
    {
        // A tree of 12 rows after 30 cached positions, window 5: each row's result equals that of a chain made of
        // the prefix and its path, computed with the same window (the definition the window follows).
        var c = Config(4, 2, 64);
        var variant = new AttentionVariant(0f, 0f, 5);
        int prefix = 30, nodes = 12, stride = c.Heads * c.HeadDim;
        int[] parents = [-1, 0, 1, 1, 3, 4, 0, 6, 5, 8, 9, 2];
        var tree = new RaggedBatch(nodes, 1, 16, 4);
        tree.AddTree(new int[nodes], parents, prefix, Enumerable.Range(0, 16).ToArray());
        var (q, k, v) = Inputs(c, nodes, prefix + nodes, 23);
        foreach (bool vectorized in new[] { true, false })
        {
            var o = Run(vectorized, () => { var x = new float[q.Length]; CpuAttention.Compute(q, k, v, c, tree, x, variant: variant); return x; });
            for (int r = 0; r < nodes; r++)
            {
                var path = new List<int>();
                for (int a = r; a >= 0; a = parents[a]) path.Insert(0, a);
                var pk = new Half[(prefix + path.Count) * c.KvDim];
                var pv = new Half[pk.Length];
                Array.Copy(k, pk, prefix * c.KvDim);
                Array.Copy(v, pv, prefix * c.KvDim);
                for (int j = 0; j < path.Count; j++)
                {
                    Array.Copy(k, (prefix + path[j]) * c.KvDim, pk, (prefix + j) * c.KvDim, c.KvDim);
                    Array.Copy(v, (prefix + path[j]) * c.KvDim, pv, (prefix + j) * c.KvDim, c.KvDim);
                }
                var chain = Run(vectorized, () => { var x = new float[stride]; CpuAttention.Compute(q.AsSpan(r * stride, stride).ToArray(), pk, pv, c, 1, prefix + path.Count - 1, x, variant); return x; });
                Assert.That(o.AsSpan(r * stride, stride).ToArray(), Is.EqualTo(chain), $"row {r} (vectorized {vectorized})");
            }
        }
    }

    /// <summary>The two paths sum in different orders, so a score may differ in its last bits, and a probability that
    /// lies on an F16 rounding boundary may then round to the neighbouring half: at most half an F16 ulp (2^-11
    /// relative) of probabilities that sum to 1, times |V| ≤ 1. 1e-3 is twice that bound.</summary>
    private static void AssertAgree(float[] fast, float[] general)
    {
        for (int i = 0; i < fast.Length; i++)
            Assert.That(fast[i], Is.EqualTo(general[i]).Within(1e-3), $"output {i}");
    }

    [Test]
    public void A_row_gets_the_same_bits_whatever_rows_it_is_computed_with()
    {
        // 37 rows in one call (blocks of 10 rows for a group of 3 heads) against the same rows in calls of 20, 1 and 16
        // rows: other blocks, other neighbours, other tiles of positions.
        var c = Config(6, 2, 64);
        int rows = 37, startPos = 3;
        var (q, k, v) = Inputs(c, rows, startPos + rows, 11);
        var all = new float[q.Length];
        CpuAttention.Compute(q, k, v, c, rows, startPos, all);
        int stride = c.Heads * c.HeadDim, done = 0;
        foreach (int part in new[] { 20, 1, 16 })
        {
            var qPart = q.AsSpan(done * stride, part * stride).ToArray();
            var oPart = new float[qPart.Length];
            CpuAttention.Compute(qPart, k, v, c, part, startPos + done, oPart);
            Assert.That(oPart, Is.EqualTo(all.AsSpan(done * stride, part * stride).ToArray()), $"rows {done}..{done + part - 1}");
            done += part;
        }
    }

    [Test]
    public void Paged_rows_agree_with_the_general_path_and_with_each_sequence_alone()
    {
        // Two sequences over a scattered block table (block size 4): 3 rows of the first at positions 5..7 and
        // one decode row of the second at position 10.
        var c = Config(6, 3, 64);
        int[] t0 = [7, 2], t1 = [0, 5, 3];
        var batch = new RaggedBatch(8, 2, 8, 4);
        batch.Add([1, 2, 3], 5, t0);
        batch.Add([4], 10, t1);
        var (q, k, v) = Inputs(c, batch.Rows, 8 * 4, 5);
        float[] Compute() { var o = new float[q.Length]; CpuAttention.Compute(q, k, v, c, batch, o); return o; }
        float[] fast = Run(true, Compute), general = Run(false, Compute);
        AssertAgree(fast, general);
        int[] rowPos = [5, 6, 7, 10];
        AssertNearDouble(c, q, k, v, batch.Rows, r => rowPos[r], r => p => { var t = r < 3 ? t0 : t1; return t[p / 4] * 4 + p % 4; }, fast);

        // Each sequence alone in its own batch: the same bits as beside the other.
        int stride = c.Heads * c.HeadDim;
        var alone = new RaggedBatch(8, 1, 8, 4);
        alone.Add([1, 2, 3], 5, t0);
        var o0 = new float[3 * stride];
        CpuAttention.Compute(q.AsSpan(0, 3 * stride).ToArray(), k, v, c, alone, o0);
        Assert.That(o0, Is.EqualTo(fast.AsSpan(0, 3 * stride).ToArray()));
        alone.Clear();
        alone.Add([4], 10, t1);
        var o1 = new float[stride];
        CpuAttention.Compute(q.AsSpan(3 * stride, stride).ToArray(), k, v, c, alone, o1);
        Assert.That(o1, Is.EqualTo(fast.AsSpan(3 * stride, stride).ToArray()));
    }

    private static void AssertNearDouble(LlamaConfig c, float[] q, Half[] k, Half[] v, int rows, Func<int, int> pos,
        Func<int, int> slot, float[] actual) => AssertNearDouble(c, q, k, v, rows, pos, _ => slot, actual);

    /// <summary>Softmax(q·K/√d)·V in double, with the same F16 roundings (q, probabilities) as llama.cpp's path.</summary>
    private static void AssertNearDouble(LlamaConfig c, float[] q, Half[] k, Half[] v, int rows, Func<int, int> pos,
        Func<int, Func<int, int>> slotOf, float[] actual)
    {
        int hd = c.HeadDim;
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < c.Heads; h++)
            {
                int n = pos(r) + 1, kvh = h / c.GroupSize;
                var slot = slotOf(r);
                var s = new double[n];
                for (int p = 0; p < n; p++)
                {
                    double dot = 0;
                    for (int i = 0; i < hd; i++)
                        dot += (double)(float)(Half)q[(r * c.Heads + h) * hd + i] * (double)k[slot(p) * c.KvDim + kvh * hd + i];
                    s[p] = dot / Math.Sqrt(hd);
                }
                double max = s.Max(), sum = s.Sum(x => Math.Exp(x - max));
                for (int i = 0; i < hd; i++)
                {
                    double o = 0;
                    for (int p = 0; p < n; p++) o += (double)(float)(Half)(Math.Exp(s[p] - max) / sum) * (double)v[slot(p) * c.KvDim + kvh * hd + i];
                    // Probabilities rounded to F16 (relative 2^-11) dominate the difference; values are at most 1 in size.
                    Assert.That(actual[(r * c.Heads + h) * hd + i], Is.EqualTo(o).Within(2e-3), $"row {r} head {h} dim {i}");
                }
            }
    }
}
