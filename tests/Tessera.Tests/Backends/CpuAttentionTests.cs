using NUnit.Framework;
using Tessera.Backends;
using Tessera.Backends.Cpu;
using Tessera.Model;

namespace Tessera.Tests.Backends;

/// <summary>The vectorized attention row against the general one, and both against attention computed in double.</summary>
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
    [TestCase(6, 2, 64, 37, 3)]
    [TestCase(8, 2, 80, 9, 100)]
    [TestCase(4, 1, 128, 3, 250)]
    public void Contiguous_rows_equal_the_general_path_bit_for_bit(int heads, int kvHeads, int headDim, int rows, int startPos)
    {
        var c = Config(heads, kvHeads, headDim);
        var (q, k, v) = Inputs(c, rows, startPos + rows, heads * 31 + rows);
        float[] Compute() { var o = new float[q.Length]; CpuAttention.Compute(q, k, v, c, rows, startPos, o); return o; }
        float[] fast = Run(true, Compute), general = Run(false, Compute);
        Assert.That(fast, Is.EqualTo(general));
        AssertNearDouble(c, q, k, v, rows, r => startPos + r, p => p, fast);
    }

    [Test]
    public void Paged_rows_equal_the_general_path_bit_for_bit()
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
        Assert.That(fast, Is.EqualTo(general));
        int[] rowPos = [5, 6, 7, 10];
        AssertNearDouble(c, q, k, v, batch.Rows, r => rowPos[r], r => p => { var t = r < 3 ? t0 : t1; return t[p / 4] * 4 + p % 4; }, fast);
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
