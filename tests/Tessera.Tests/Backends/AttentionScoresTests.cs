using NUnit.Framework;
using Tessera.Backends;
using Tessera.Backends.Cpu;
using Tessera.Model;

namespace Tessera.Tests.Backends;

/// <summary>The attention op's optional score sums (KV budgets, prompt pruning) against the same sums computed in
/// double from their definition, on both CPU paths and with chains, a decode row and a tree in one ragged batch over a
/// paged cache; and the outputs stay the same bits with scores on.</summary>
[TestFixture, NonParallelizable] // flips CpuAttention.VectorizedRows
public class AttentionScoresTests
{
    private const int BlockSize = 16;

    private static LlamaConfig Config(int heads, int kvHeads, int headDim) => new()
    {
        Architecture = "llama", VocabSize = 8, Dim = heads * headDim, FfnDim = 8, Layers = 1, Heads = heads,
        KvHeads = kvHeads, HeadDim = headDim, NormEps = 1e-5f, RopeTheta = 10000, RopeLayout = RopeLayout.AdjacentPairs,
        ContextLength = 512, TiedEmbeddings = true,
    };

    // Sequence 0: a chain of 5 rows after 7 cached positions, all scored; 1: a decode row after 40, scored; 2: a tree
    // (parents -1, 0, 0, 1) after 3, scored from its row 1; 3: a chain of 3 after 20, not scored. Blocks shuffled.
    private static (RaggedBatch Batch, int Slots) Layout(AttentionScores scores)
    {
        var batch = new RaggedBatch(64, 4, 64, BlockSize);
        var rng = new Random(5);
        var blocks = Enumerable.Range(0, 16).ToArray();
        rng.Shuffle(blocks);
        batch.Add(new int[5], 7, blocks.AsSpan(0, 1), RowLogits.All);
        batch.Add(new int[1], 40, blocks.AsSpan(1, 3));
        batch.AddTree(new int[4], [-1, 0, 0, 1], 3, blocks.AsSpan(4, 1));
        batch.Add(new int[3], 20, blocks.AsSpan(5, 2));
        scores.Clear();
        scores.Request(0, 0);
        scores.Request(1, 0);
        scores.Request(2, 1);
        return (batch, 16 * BlockSize);
    }

    [TestCase(6, 2, 64, true)]
    [TestCase(6, 2, 64, false)]
    [TestCase(4, 4, 16, true)]
    [TestCase(8, 2, 80, true)]
    [TestCase(3, 1, 24, false)] // a head size the vectorized path does not take
    public void Probability_sums_match_the_definition_and_outputs_keep_their_bits(int heads, int kvHeads, int headDim, bool vectorized) =>
        Check(heads, kvHeads, headDim, vectorized, AttentionScoreKind.Probability, 1f);

    [TestCase(6, 2, 64, true, 1.0f)]
    [TestCase(6, 2, 64, false, 1.7f)]
    [TestCase(3, 1, 24, false, 2.0f)]
    public void Keyformer_sums_match_the_definition(int heads, int kvHeads, int headDim, bool vectorized, float tau) =>
        Check(heads, kvHeads, headDim, vectorized, AttentionScoreKind.GumbelSoftmax, tau);

    private static void Check(int heads, int kvHeads, int headDim, bool vectorized, AttentionScoreKind kind, float tau)
    {
        var c = Config(heads, kvHeads, headDim);
        var scores = new AttentionScores { Kind = kind, Temperature = tau, Seed = 99 };
        var (batch, slots) = Layout(scores);
        var rng = new Random(heads * 7 + headDim);
        var q = new float[batch.Rows * c.QDim];
        for (int i = 0; i < q.Length; i++) q[i] = (float)(rng.NextDouble() * 6 - 3);
        var k = new Half[slots * c.KvDim];
        var v = new Half[slots * c.KvDim];
        for (int i = 0; i < k.Length; i++) { k[i] = (Half)(rng.NextDouble() * 2 - 1); v[i] = (Half)(rng.NextDouble() * 2 - 1); }

        bool was = CpuAttention.VectorizedRows;
        CpuAttention.VectorizedRows = vectorized;
        try
        {
            var plain = new float[q.Length];
            CpuAttention.Compute(q, k, v, c, batch, plain);
            var scored = new float[q.Length];
            scores.Begin(batch);
            CpuAttention.Compute(q, k, v, c, batch, scored, scores, layer: 2);
            Assert.That(scored, Is.EqualTo(plain), "outputs with scores on");

            for (int s = 0; s < batch.Sequences; s++)
            {
                if (scores.FromRow(s) < 0) { Assert.That(scores.Of(s).IsEmpty, $"sequence {s} is not scored"); continue; }
                var want = Naive(c, batch, s, scores, q, k, kind, tau);
                var got = scores.Of(s);
                Assert.That(got.Length, Is.EqualTo(want.Length), $"sequence {s}: positions");
                for (int p = 0; p < want.Length; p++)
                {
                    if (want[p] == 0) Assert.That(got[p], Is.EqualTo(0f), $"sequence {s} position {p}: unseen, must get exactly 0");
                    else Assert.That(got[p], Is.EqualTo(want[p]).Within(2e-5 * heads + 1e-4 * want[p]), $"sequence {s} position {p}");
                }
            }
        }
        finally { CpuAttention.VectorizedRows = was; }
    }

    // The definition in double: per scored row and query head, softmax over the positions the row sees of
    // q·k/√d (Keyformer: of (q·k/√d + g)/τ), summed over heads and rows. q is rounded to F16 as the op rounds it.
    private static double[] Naive(LlamaConfig c, RaggedBatch batch, int s, AttentionScores scores, float[] q, Half[] k, AttentionScoreKind kind, float tau)
    {
        int start = batch.StartPos[s], n = start + batch.RowCount[s];
        var acc = new double[n];
        var table = batch.Table(s).ToArray();
        long Slot(int p) => (long)table[p / BlockSize] * BlockSize + p % BlockSize;
        for (int i = scores.FromRow(s); i < batch.RowCount[s]; i++)
        {
            int r = batch.RowStart[s] + i;
            var seen = Enumerable.Range(0, n).Where(p => p < start || batch.Sees(r, p - start)).ToArray();
            for (int h = 0; h < c.Heads; h++)
            {
                int kvh = h / c.GroupSize;
                var x = seen.Select(p =>
                {
                    double dot = 0;
                    for (int d = 0; d < c.HeadDim; d++)
                        dot += (double)(float)(Half)q[(r * c.Heads + h) * c.HeadDim + d] * (double)k[Slot(p) * c.KvDim + kvh * c.HeadDim + d];
                    double logit = dot / Math.Sqrt(c.HeadDim);
                    return kind == AttentionScoreKind.Probability ? logit : (logit + scores.Gumbel(s, 2, h, p, batch.Positions[r])) / tau;
                }).ToArray();
                double max = x.Max(), sum = x.Sum(e => Math.Exp(e - max));
                for (int j = 0; j < seen.Length; j++) acc[seen[j]] += Math.Exp(x[j] - max) / sum;
            }
        }
        return acc;
    }
}
