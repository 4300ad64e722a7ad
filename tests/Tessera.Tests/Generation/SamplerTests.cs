using NUnit.Framework;
using Tessera.Sampling;

namespace Tessera.Tests.Generation;

public class SamplerTests
{
    private static float[] Logits() => [1.0f, 3.0f, 2.5f, -1.0f, 0.5f, 2.9f];

    [Test]
    public void TemperatureZeroIsArgmax()
    {
        var s = new Sampler(SamplingOptions.Greedy, 6);
        Assert.That(s.Sample(Logits()), Is.EqualTo(1));
    }

    [Test]
    public void TopKOneIsArgmaxWhateverTheSeed()
    {
        for (ulong seed = 0; seed < 20; seed++)
        {
            var s = new Sampler(new SamplingOptions { Temperature = 1.5f, TopK = 1, Seed = seed }, 6);
            Assert.That(s.Sample(Logits()), Is.EqualTo(1));
        }
    }

    [Test]
    public void SameSeedSameDraws_DifferentSeedsDiffer()
    {
        int[] Draw(ulong seed)
        {
            var s = new Sampler(new SamplingOptions { Temperature = 1.0f, TopK = 0, TopP = 1, MinP = 0, Seed = seed }, 6);
            return Enumerable.Range(0, 64).Select(_ => s.Sample(Logits())).ToArray();
        }
        Assert.That(Draw(42), Is.EqualTo(Draw(42)));
        Assert.That(Draw(42), Is.Not.EqualTo(Draw(43)));
    }

    [Test]
    public void An_explicit_uniform_draw_picks_by_cumulative_probability()
    {
        // Temperature 1, no truncation: probabilities of the logits sorted descending (ids 1, 5, 2, 0, 4, 3) are
        // e^3, e^2.9, e^2.5, ... / Z; u just below / above the first cumulative boundary picks id 1 / id 5.
        var s = new Sampler(new SamplingOptions { Temperature = 1.0f, TopK = 0, TopP = 1, MinP = 0, Seed = 1 }, 6);
        double[] e = [.. new[] { 3.0, 2.9, 2.5, 1.0, 0.5, -1.0 }.Select(x => Math.Exp(x - 3.0))];
        double p0 = e[0] / e.Sum();
        Assert.That(s.Sample(Logits(), p0 - 1e-6), Is.EqualTo(1));
        Assert.That(s.Sample(Logits(), p0 + 1e-6), Is.EqualTo(5));
        Assert.That(s.Sample(Logits(), 0.999999), Is.EqualTo(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Sample(Logits(), 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Sample(Logits(), double.NaN));
    }

    [Test]
    public void Sample_draws_the_same_as_an_explicit_uniform_from_the_same_sequence()
    {
        var o = new SamplingOptions { Temperature = 1.0f, TopK = 0, TopP = 1, MinP = 0, Seed = 7 };
        var a = new Sampler(o, 6);
        var b = new Sampler(o, 6);
        for (int i = 0; i < 32; i++) Assert.That(a.Sample(Logits()), Is.EqualTo(b.Sample(Logits(), b.NextUniform())));
    }

    [Test]
    public void DrawsFollowTheSoftmax()
    {
        // With no truncation, frequencies must approach softmax(logits / T).
        float[] logits = [0f, 1f, 2f];
        var s = new Sampler(new SamplingOptions { Temperature = 1.0f, TopK = 0, TopP = 1, MinP = 0, Seed = 7 }, 3);
        var counts = new int[3];
        const int n = 60000;
        for (int i = 0; i < n; i++) counts[s.Sample((float[])logits.Clone())]++;
        double z = 1 + Math.E + Math.E * Math.E;
        double[] expected = [1 / z, Math.E / z, Math.E * Math.E / z];
        for (int i = 0; i < 3; i++)
            Assert.That(counts[i] / (double)n, Is.EqualTo(expected[i]).Within(0.01), $"token {i}");
    }

    [Test]
    public void TopPKeepsTheSmallestNucleus()
    {
        // softmax([5, 4, 0, 0]) ≈ [0.727, 0.268, 0.0025, 0.0025]: top-p 0.5 keeps only token 0, top-p 0.9 keeps 0 and 1.
        float[] logits = [5f, 4f, 0f, 0f];
        var only0 = new Sampler(new SamplingOptions { Temperature = 5f, TopK = 0, TopP = 0.5f, MinP = 0, Seed = 1 }, 4);
        for (int i = 0; i < 200; i++) Assert.That(only0.Sample((float[])logits.Clone()), Is.EqualTo(0));
        var two = new Sampler(new SamplingOptions { Temperature = 5f, TopK = 0, TopP = 0.9f, MinP = 0, Seed = 1 }, 4);
        var seen = Enumerable.Range(0, 400).Select(_ => two.Sample((float[])logits.Clone())).ToHashSet();
        Assert.That(seen, Is.EquivalentTo(new[] { 0, 1 }));
    }

    [Test]
    public void MinPDropsUnlikelyTokens()
    {
        // p(1)/p(0) = e^-1 ≈ 0.37 passes min-p 0.3; p(2)/p(0) = e^-3 ≈ 0.05 does not.
        float[] logits = [3f, 2f, 0f];
        var s = new Sampler(new SamplingOptions { Temperature = 10f, TopK = 0, TopP = 1, MinP = 0.3f, Seed = 3 }, 3);
        var seen = Enumerable.Range(0, 400).Select(_ => s.Sample((float[])logits.Clone())).ToHashSet();
        Assert.That(seen, Is.EquivalentTo(new[] { 0, 1 }));
    }

    [Test]
    public void RepetitionPenaltyFlipsTheChoice()
    {
        var s = new Sampler(SamplingOptions.Greedy with { RepetitionPenalty = 1.5f }, 6);
        s.Accept(1); // 3.0 / 1.5 = 2.0 < 2.9
        Assert.That(s.Sample(Logits()), Is.EqualTo(5));
    }

    [Test]
    public void FrequencyAndPresencePenaltiesSubtract()
    {
        var s = new Sampler(SamplingOptions.Greedy with { FrequencyPenalty = 0.2f, PresencePenalty = 0.1f }, 6);
        s.Accept(1);
        var l = Logits();
        s.Sample(l);
        Assert.That(l[1], Is.EqualTo(3.0f - 0.2f - 0.1f).Within(1e-6));
        s.Accept(1);
        l = Logits();
        s.Sample(l);
        Assert.That(l[1], Is.EqualTo(3.0f - 0.4f - 0.1f).Within(1e-6));
    }

    [TestCase(-1f, 40, 0.9f, 0.05f, "temperature")]
    [TestCase(0.8f, -1, 0.9f, 0.05f, "top-k")]
    [TestCase(0.8f, 40, 0f, 0.05f, "top-p")]
    [TestCase(0.8f, 40, 1.5f, 0.05f, "top-p")]
    [TestCase(0.8f, 40, 0.9f, 2f, "min-p")]
    public void OutOfRangeOptionsAreNamed(float t, int k, float p, float minP, string name)
    {
        var o = new SamplingOptions { Temperature = t, TopK = k, TopP = p, MinP = minP };
        var e = Assert.Throws<ArgumentException>(() => o.Validate())!;
        Assert.That(e.Message, Does.Contain(name));
    }

    /// <summary>Top-k picks its candidates with a heap instead of sorting the vocabulary; the draw must be the one a full
    /// sort gives: the same seed on the same logits with everything outside the top k masked to -inf and top-k off.</summary>
    [Test]
    public void TopKSelectionDrawsAsAFullSortWould()
    {
        var rng = new Random(11);
        const int vocab = 5000, k = 40;
        for (int seed = 0; seed < 60; seed++)
        {
            float[] logits = new float[vocab];
            for (int i = 0; i < vocab; i++) logits[i] = (float)(rng.NextDouble() * 8 - 4);
            float[] masked = (float[])logits.Clone();
            var order = Enumerable.Range(0, vocab).OrderByDescending(i => logits[i]).ToArray();
            foreach (int i in order.Skip(k)) masked[i] = float.NegativeInfinity;
            var o = new SamplingOptions { Temperature = 0.9f, TopK = k, TopP = 0.97f, MinP = 0.01f, Seed = (ulong)seed };
            int fast = new Sampler(o, vocab).Sample(logits);
            int full = new Sampler(o with { TopK = 0 }, vocab).Sample(masked);
            Assert.That(fast, Is.EqualTo(full), $"seed {seed}");
            Assert.That(order.Take(k), Does.Contain(fast));
        }
    }
}
