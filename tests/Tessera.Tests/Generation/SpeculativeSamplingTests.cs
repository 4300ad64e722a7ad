using NUnit.Framework;
using Tessera.Generation;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Speculation;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Generation;

/// <summary>
/// Speculative sampling draws from the target's distribution exactly: a chi-square goodness-of-fit test of the
/// second and third generated tokens (drawn through a draft tree) against their exact joint probabilities under
/// temperature 1 and top-p 0.9, enumerated from the model. The same test, with the same number of draws, rejects a
/// deliberately wrong acceptance rule (the p/q ratio rule applied to a deterministic top-2 draft as if q were uniform
/// over it), so it has the power to catch a wrong rule.
/// </summary>
public class SpeculativeSamplingTests
{
    private const float TopP = 0.9f;
    private const int Draws = 3000;

    private static readonly SamplingOptions Options = new() { Temperature = 1.0f, TopP = TopP, TopK = 0, MinP = 0, RepetitionPenalty = 1 };

    // The distribution the sampler draws from: softmax at temperature 1, cut to the smallest top set of mass >= TopP
    // (the sampler's own rule), renormalized. In double: the reference, not the code under test.
    private static (int[] Ids, double[] P) Distribution(float[] logits)
    {
        int[] ids = [.. Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i)];
        double max = logits[ids[0]], sum = ids.Sum(i => Math.Exp(logits[i] - max));
        int k = 0;
        double cum = 0;
        while (k < ids.Length) { cum += Math.Exp(logits[ids[k]] - max) / sum; k++; if (cum >= TopP) break; }
        double kept = ids.Take(k).Sum(i => Math.Exp(logits[i] - max));
        return (ids[..k], [.. ids.Take(k).Select(i => Math.Exp(logits[i] - max) / kept)]);
    }

    /// <summary>The model's next-token distributions after the prompt and one, two tokens, every branch with
    /// probability, enumerated by running each prefix.</summary>
    private sealed class Enumeration
    {
        public (int[] Ids, double[] P) First = default!;
        public Dictionary<int, (int[] Ids, double[] P)> Second = [];
        public Dictionary<(int, int), (int[] Ids, double[] P)> Third = [];
        public Dictionary<(int, int), double> Expected = [];   // P(t2, t3), t1 summed out

        public Enumeration(LoadedModel m, IReadOnlyList<int> prompt)
        {
            using var s = m.Model.CreateState(prompt.Count + 4);
            m.Model.Forward(s, prompt.ToArray());
            First = Distribution(s.Logits);
            int start = s.Position;
            foreach (int t1 in First.Ids)
            {
                s.Rewind(start);
                m.Model.Forward(s, [t1]);
                Second[t1] = Distribution(s.Logits);
                foreach (int t2 in Second[t1].Ids)
                {
                    s.Rewind(start + 1);
                    m.Model.Forward(s, [t2]);
                    Third[(t1, t2)] = Distribution(s.Logits);
                }
            }
            for (int a = 0; a < First.Ids.Length; a++)
            {
                int t1 = First.Ids[a];
                var d2 = Second[t1];
                for (int b = 0; b < d2.Ids.Length; b++)
                {
                    var d3 = Third[(t1, d2.Ids[b])];
                    for (int c = 0; c < d3.Ids.Length; c++)
                    {
                        var key = (d2.Ids[b], d3.Ids[c]);
                        Expected[key] = Expected.GetValueOrDefault(key) + First.P[a] * d2.P[b] * d3.P[c];
                    }
                }
            }
        }
    }

    /// <summary>Drafts a tree below the first generated token t1: its two most likely successors, and under each the
    /// two most likely next ones (what a good deterministic drafter proposes), known from the enumeration.</summary>
    private sealed class TopTwoTree(Enumeration e, int promptLength) : IDraftProposer
    {
        public long StateBytes => 0;
        public void Propose(ReadOnlySpan<int> context, DraftTree tree)
        {
            if (context.Length != promptLength + 1) return;  // only the pass after t1
            int t1 = context[^1];
            var d2 = e.Second[t1];
            for (int a = 0; a < Math.Min(2, d2.Ids.Length); a++)
            {
                int child = tree.Add(0, d2.Ids[a]);
                if (child < 0) return;
                var d3 = e.Third[(t1, d2.Ids[a])];
                for (int b = 0; b < Math.Min(2, d3.Ids.Length); b++) tree.Add(child, d3.Ids[b]);
            }
        }
    }

    private static double ChiSquare(Dictionary<(int, int), int> counts, Dictionary<(int, int), double> expected, int n, out int df)
    {
        // Cells with an expected count of at least 5, the rest pooled into one.
        double stat = 0, pooledExpected = 0;
        int pooledObserved = 0, cells = 0;
        foreach (var (key, p) in expected)
        {
            int o = counts.GetValueOrDefault(key);
            double x = p * n;
            if (x >= 5) { stat += (o - x) * (o - x) / x; cells++; }
            else { pooledExpected += x; pooledObserved += o; }
        }
        foreach (var (key, o) in counts)
            if (!expected.ContainsKey(key)) pooledObserved += o;  // outside the support: counts against the pool
        if (pooledExpected > 0) { stat += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected; cells++; }
        df = cells - 1;
        return stat;
    }

    // Upper 0.1% point of chi-square with df degrees of freedom (Wilson-Hilferty).
    private static double Critical(int df)
    {
        double h = 2.0 / (9 * df);
        return df * Math.Pow(1 - h + 3.090 * Math.Sqrt(h), 3);
    }

    [Test]
    public void Tree_verification_samples_the_target_distribution_and_a_wrong_rule_is_caught()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        var prompt = m.Tokenizer.Encode("Once upon a time, there was a little dog named", true);
        var e = new Enumeration(m, prompt);
        Assert.That(e.Expected.Count(x => x.Value * Draws >= 5), Is.GreaterThan(10), "the test needs a spread-out distribution");

        // The code under test: TextGenerator drawing t2 and t3 through the verified tree, one seed per draw.
        var counts = new Dictionary<(int, int), int>();
        int accepted = 0, drafted = 0;
        var gen = new TextGenerator(m.Model, m.Tokenizer);
        using var state = m.Model.CreateState(prompt.Count + 8);
        var spec = new SpeculationOptions { Adaptive = false, DraftMax = 6, ProposerFactory = () => new TopTwoTree(e, prompt.Count) };
        for (int i = 0; i < Draws; i++)
        {
            state.Rewind(0);
            // A fourth token, so that t3 is itself checked against the grandchildren (a tree yields depth + 1 tokens).
            var o = new GenerationOptions { MaxTokens = 4, StopAtEndOfGeneration = false, Sampling = Options with { Seed = (ulong)(i + 1) }, Speculation = spec };
            var stats = new GenerationStats();
            var ids = gen.Generate(state, prompt, o, stats).Where(t => t.Token >= 0).Select(t => t.Token).ToArray();
            counts[(ids[1], ids[2])] = counts.GetValueOrDefault((ids[1], ids[2])) + 1;
            accepted += stats.Speculation!.AcceptedTokens;
            drafted += stats.Speculation.DraftedTokens;
        }
        Assert.That(drafted, Is.GreaterThan(5 * Draws), "draws go through trees of up to six nodes (fewer where top-p keeps one token)");
        Assert.That(accepted, Is.InRange(Draws / 4, 2 * Draws - Draws / 4), "acceptance must be exercised both ways");
        double stat = ChiSquare(counts, e.Expected, Draws, out int df);
        TestContext.Out.WriteLine($"speculative: chi-square {stat:F1}, {df} df, critical {Critical(df):F1}; accepted {accepted} of {drafted} drafted");
        Assert.That(stat, Is.LessThan(Critical(df)), $"chi-square {stat:F1} on {df} degrees of freedom: speculative sampling is not the target's distribution");

        // The wrong rule, same draws: accept child c with probability min(1, p(c) / q(c)), q = 1/2 on the two children,
        // otherwise draw from the residual max(p - q, 0); right for a draft sampled from q, wrong for a
        // deterministic top-2 draft.
        var rng = new Random(99);
        var wrong = new Dictionary<(int, int), int>();
        for (int i = 0; i < Draws; i++)
        {
            int t1 = Draw(e.First, rng);
            int t2 = WrongStep(e.Second[t1], rng);
            int t3 = WrongStep(e.Third[(t1, t2)], rng);
            wrong[(t2, t3)] = wrong.GetValueOrDefault((t2, t3)) + 1;
        }
        double wrongStat = ChiSquare(wrong, e.Expected, Draws, out int wrongDf);
        TestContext.Out.WriteLine($"wrong rule: chi-square {wrongStat:F1}, {wrongDf} df, critical {Critical(wrongDf):F1}");
        Assert.That(wrongStat, Is.GreaterThan(Critical(wrongDf)), $"chi-square {wrongStat:F1} on {wrongDf} degrees of freedom: the test cannot tell the wrong rule apart");
    }

    private static int Draw((int[] Ids, double[] P) d, Random rng)
    {
        double u = rng.NextDouble(), acc = 0;
        for (int i = 0; i < d.Ids.Length; i++) { acc += d.P[i]; if (u < acc) return d.Ids[i]; }
        return d.Ids[^1];
    }

    private static int WrongStep((int[] Ids, double[] P) d, Random rng)
    {
        int children = Math.Min(2, d.Ids.Length);
        var residual = (double[])d.P.Clone();
        for (int c = 0; c < children; c++)
        {
            if (rng.NextDouble() < Math.Min(1, d.P[c] / 0.5)) return d.Ids[c];
            residual[c] = Math.Max(d.P[c] - 0.5, 0);
        }
        double sum = residual.Sum();
        if (sum <= 0) return d.Ids[0];
        return Draw((d.Ids, [.. residual.Select(x => x / sum)]), rng);
    }
}
