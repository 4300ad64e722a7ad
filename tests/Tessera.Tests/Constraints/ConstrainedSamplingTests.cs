using System.Text;
using NUnit.Framework;
using Tessera.Constraints;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Constraints;

/// <summary>
/// Constrained sampling is exact: the token drawn has probability p(x)·1[allowed]/Z, p being the chain's
/// distribution. The reference here is computed independently of the sampler: the allowed set by checking every
/// token's bytes on a fresh matcher (not the trie walk the sampler uses), the chain by direct formulas. Counts over
/// many seeded draws are compared by chi-square at the 0.1% level, and a plausible wrong rule (draw unconstrained,
/// and on a rejection take the most probable allowed token) is shown to fail the same test.
/// </summary>
public class ConstrainedSamplingTests
{
    private const int Draws = 12_000;

    /// <summary>TinyStories' real next-token logits after a prompt (vocabulary 2048).</summary>
    private static float[] Logits(string prompt)
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var ids = m.Tokenizer.Encode(prompt, true);
        using var s = m.Model.CreateState(ids.Count + 1);
        m.Model.Forward(s, ids.ToArray());
        return s.Logits.ToArray();
    }

    private static bool[] AllowedByBrute(Grammar g, Tessera.Tokenization.Tokenizer tok)
    {
        int vocab = tok.Vocabulary.Count;
        var allowed = new bool[vocab];
        var fresh = new GrammarMatcher(g);
        for (int t = 0; t < vocab; t++)
        {
            if (tok.IsEndOfGeneration(t)) { allowed[t] = fresh.CanEnd; continue; }
            var bytes = tok.IsControl(t) ? [] : tok.GetTokenBytes(t).ToArray();
            allowed[t] = bytes.Length > 0 && fresh.Allows(bytes);
        }
        return allowed;
    }

    private static double[] Softmax(float[] logits, bool[] keep, double temperature)
    {
        double max = double.NegativeInfinity;
        for (int i = 0; i < logits.Length; i++) if (keep[i]) max = Math.Max(max, logits[i]);
        var p = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) if (keep[i]) sum += p[i] = Math.Exp((logits[i] - max) / temperature);
        for (int i = 0; i < p.Length; i++) p[i] /= sum;
        return p;
    }

    private static (double Stat, int Df) ChiSquare(int[] counts, double[] p, int n)
    {
        double stat = 0, poolE = 0;
        int poolO = 0, cells = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double e = p[i] * n;
            if (e >= 5) { stat += (counts[i] - e) * (counts[i] - e) / e; cells++; }
            else { poolE += e; poolO += counts[i]; }
        }
        if (poolE > 0) { stat += (poolO - poolE) * (poolO - poolE) / poolE; cells++; }
        else if (poolO > 0) stat = double.PositiveInfinity;  // draws where the reference puts no mass
        return (stat, cells - 1);
    }

    private static double Critical(int df)
    {
        double h = 2.0 / (9 * df);
        return df * Math.Pow(1 - h + 3.090 * Math.Sqrt(h), 3);
    }

    private static int[] Count(Grammar g, float[] logits, SamplingOptions o, out long rejections, out long masks)
    {
        var tok = ModelCache.Get("tinystories-656k-f32.gguf").Tokenizer;
        var counts = new int[logits.Length];
        rejections = masks = 0;
        var row = new float[logits.Length];
        for (int d = 0; d < Draws; d++)
        {
            var c = new TokenConstraint(g, tok);
            var s = new Sampler(o with { Seed = (ulong)(1 + d) }, logits.Length, c);
            logits.CopyTo(row, 0);
            counts[s.Sample(row)]++;
            rejections += c.Rejections;
            masks += c.FullMasks;
        }
        return counts;
    }

    // After "The sun was" most of the model's mass is on words; a grammar of words not starting with 'l' forbids
    // the rest (punctuation, words with 'l', multi-word tokens ending elsewhere): draws are rejected now and then,
    // and rejection sampling rarely needs its mask.
    private const string Prompt = "The sun was";
    private static readonly Grammar Words = Grammar.ParseGbnf("root ::= (\" \" [a-km-z] [a-z]*)+\n");

    [Test]
    public void TheTrieMaskIsTheBruteForceAllowedSet()
    {
        var tok = ModelCache.Get("tinystories-656k-f32.gguf").Tokenizer;
        foreach (var g in new[] { Words, Grammar.AnyJsonObject, Grammar.FromRegex(@"[0-9]+(\.[0-9]+)?"), Grammar.ParseGbnf("root ::= \"a\"?\n"), Grammar.FromJsonSchema("""{"type":"string","maxLength":4}""") })
        {
            var mask = new bool[tok.Vocabulary.Count];
            int n = new TokenConstraint(g, tok).Mask(mask);
            var brute = AllowedByBrute(g, tok);
            Assert.That(mask, Is.EqualTo(brute), g.Source);
            Assert.That(n, Is.EqualTo(brute.Count(b => b)));
            // TinyStories' vocabulary has no '{' (nor '[', '}', ']'): it cannot begin a JSON object at all.
            Assert.That(n, g == Grammar.AnyJsonObject ? Is.Zero : Is.GreaterThan(0), g.Source);
        }
    }

    [Test]
    public void RejectionSamplingDrawsTheRestrictedDistributionAndAWrongRuleIsCaught()
    {
        var logits = Logits(Prompt);
        var tok = ModelCache.Get("tinystories-656k-f32.gguf").Tokenizer;
        var allowed = AllowedByBrute(Words, tok);
        var unconstrained = Softmax(logits, Enumerable.Repeat(true, logits.Length).ToArray(), 1);
        double forbidden = Enumerable.Range(0, logits.Length).Where(i => !allowed[i]).Sum(i => unconstrained[i]);
        Assert.That(forbidden, Is.InRange(0.05, 0.5), "the grammar forbids a real part of the mass");
        var o = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0 };
        var counts = Count(Words, logits, o, out long rejections, out long masks);
        var p = Softmax(logits, allowed, 1);
        var (stat, df) = ChiSquare(counts, p, Draws);
        TestContext.Out.WriteLine($"AWRS: chi-square {stat:F1} on {df} df (critical {Critical(df):F1}); {rejections / (double)Draws:F2} rejections and {masks / (double)Draws:F3} full masks per draw");
        Assert.That(stat, Is.LessThan(Critical(df)));
        Assert.That(rejections, Is.GreaterThan(Draws / 20), "rejections really happened");
        Assert.That(masks, Is.LessThan(Draws / 10), "mostly without the mask: this is the rejection path");

        // The wrong rule: the unconstrained draw if allowed, else the most probable allowed token.
        var all = Enumerable.Repeat(true, logits.Length).ToArray();
        var full = Softmax(logits, all, 1);
        int bestAllowed = Enumerable.Range(0, logits.Length).Where(i => allowed[i]).MaxBy(i => logits[i]);
        var wrong = new int[logits.Length];
        var rng = new Random(5);
        for (int d = 0; d < Draws; d++)
        {
            double u = rng.NextDouble(), acc = 0;
            int t = full.Length - 1;
            for (int i = 0; i < full.Length; i++) { acc += full[i]; if (u < acc) { t = i; break; } }
            wrong[allowed[t] ? t : bestAllowed]++;
        }
        var (wstat, wdf) = ChiSquare(wrong, p, Draws);
        Assert.That(wstat, Is.GreaterThan(Critical(wdf)), "the test tells the wrong rule apart");
    }

    [Test]
    public void ManyRejectionsFallBackToTheMaskWithTheSameDistribution()
    {
        // Only digits: improbable after a story opening, so most draws give up checking and mask.
        var digits = Grammar.FromRegex("[0-9]+");
        var logits = Logits(Prompt);
        var tok = ModelCache.Get("tinystories-656k-f32.gguf").Tokenizer;
        var counts = Count(digits, logits, new SamplingOptions { Temperature = 1.3f, TopK = 0, TopP = 1, MinP = 0 }, out _, out long masks);
        Assert.That(masks, Is.GreaterThan(Draws / 2), "the fallback really ran");
        var p = Softmax(logits, AllowedByBrute(digits, tok), 1.3);
        var (stat, df) = ChiSquare(counts, p, Draws);
        Assert.That(df, Is.GreaterThan(3));
        Assert.That(stat, Is.LessThan(Critical(df)));
    }

    [Test]
    public void WithTruncationTheChainRunsOverTheAllowedTokens()
    {
        var logits = Logits(Prompt);
        var tok = ModelCache.Get("tinystories-656k-f32.gguf").Tokenizer;
        var allowed = AllowedByBrute(Words, tok);
        var o = new SamplingOptions { Temperature = 0.8f, TopK = 50, TopP = 0.98f, MinP = 0.005f };
        var counts = Count(Words, logits, o, out _, out long masks);
        Assert.That(masks, Is.EqualTo(Draws), "truncation is defined over the allowed set: one mask per draw");
        // Reference chain, over the allowed tokens: top-k, then top-p and min-p at temperature 1, then temperature.
        var order = Enumerable.Range(0, logits.Length).Where(i => allowed[i]).OrderByDescending(i => logits[i]).Take(50).ToArray();
        double max = logits[order[0]];
        var q = order.Select(i => Math.Exp(logits[i] - max)).ToArray();
        double sum = q.Sum(), cum = 0;
        int k = order.Length;
        for (int i = 0; i < order.Length; i++) { cum += q[i] / sum; if (cum >= 0.98) { k = i + 1; break; } }
        int keep = 1;
        while (keep < k && q[keep] >= q[0] * 0.005) keep++;
        var kept = new bool[logits.Length];
        foreach (int i in order.Take(keep)) kept[i] = true;
        var p = Softmax(logits, kept, 0.8);
        var (stat, df) = ChiSquare(counts, p, Draws);
        Assert.That(df, Is.GreaterThan(3));
        Assert.That(stat, Is.LessThan(Critical(df)));
    }

    [Test]
    public void GreedyTakesTheMostProbableAllowedToken()
    {
        var logits = Logits(Prompt);
        var tok = ModelCache.Get("tinystories-656k-f32.gguf").Tokenizer;
        foreach (var g in new[] { Words, Grammar.FromRegex("[0-9]+"), Grammar.ParseGbnf("root ::= \",\" .*\n") })
        {
            var allowed = AllowedByBrute(g, tok);
            int expected = Enumerable.Range(0, logits.Length).Where(i => allowed[i]).MaxBy(i => logits[i]);
            var s = new Sampler(SamplingOptions.Greedy, logits.Length, new TokenConstraint(g, tok));
            Assert.That(s.Sample(logits.ToArray()), Is.EqualTo(expected), g.Source);
        }
    }
}
