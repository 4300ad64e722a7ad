using NUnit.Framework;
using Tessera.Sampling;
using Tessera.Sampling.Processors;

namespace Tessera.Tests.Generation;

/// <summary>The logit-bias stage of the sampling pipeline, and where it sits in it.</summary>
public class LogitBiasTests
{
    private static float[] Logits() => [1.0f, 3.0f, 2.5f, -1.0f, 0.5f, 2.9f];

    [Test]
    public void A_banned_argmax_gives_the_next_best_and_a_forced_token_wins()
    {
        var ban = new Sampler(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [1] = float.NegativeInfinity } }, 6);
        Assert.That(ban.Sample(Logits()), Is.EqualTo(5));
        var hundred = new Sampler(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [1] = -100, [5] = -100 } }, 6);
        Assert.That(hundred.Sample(Logits()), Is.EqualTo(2));
        var force = new Sampler(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = 3, LogitBias = new Dictionary<int, float> { [3] = 100 } }, 6);
        Assert.That(Enumerable.Range(0, 200).Select(_ => force.Sample(Logits())).Distinct(), Is.EqualTo(new[] { 3 }));
    }

    [Test]
    public void A_bias_multiplies_a_tokens_odds_by_its_exponential()
    {
        // Four equal logits, +ln 3 on token 2: probabilities 1/6, 1/6, 1/2, 1/6. Chi-square over 12,000 seeded draws
        // (3 degrees of freedom: 16.27 at p = 0.001). A bias added after the temperature (here 0.5) would give token
        // 2 nine times the others' odds instead of three and fail it.
        var o = new SamplingOptions { Temperature = 0.5f, TopK = 0, TopP = 1, MinP = 0, Seed = 11, LogitBias = new Dictionary<int, float> { [2] = MathF.Log(3) } };
        var s = new Sampler(o with { Temperature = 1 }, 4);
        var counts = new int[4];
        const int n = 12_000;
        for (int i = 0; i < n; i++) counts[s.Sample(new float[4])]++;
        double[] p = [1 / 6.0, 1 / 6.0, 0.5, 1 / 6.0];
        double chi = Enumerable.Range(0, 4).Sum(i => Math.Pow(counts[i] - n * p[i], 2) / (n * p[i]));
        Assert.That(chi, Is.LessThan(16.27), $"counts {string.Join(", ", counts)}");
        // At temperature 0.5 the bias is scaled with the logits: odds 3^2 = 9.
        var hot = new Sampler(o, 4);
        Array.Clear(counts);
        for (int i = 0; i < n; i++) counts[hot.Sample(new float[4])]++;
        double[] q = [1 / 12.0, 1 / 12.0, 0.75, 1 / 12.0];
        chi = Enumerable.Range(0, 4).Sum(i => Math.Pow(counts[i] - n * q[i], 2) / (n * q[i]));
        Assert.That(chi, Is.LessThan(16.27), $"counts {string.Join(", ", counts)}");
    }

    [Test]
    public void The_bias_comes_after_the_penalties()
    {
        // Token 0 (logit 4) was seen: repetition penalty 2 makes it 2, then +1 makes it 3, above token 1's 2.8.
        // Biased first it would be (4 + 1) / 2 = 2.5, below.
        var s = new Sampler(SamplingOptions.Greedy with { RepetitionPenalty = 2, LogitBias = new Dictionary<int, float> { [0] = 1 } }, 2);
        s.Accept(0);
        Assert.That(s.Sample(new[] { 4f, 2.8f }), Is.EqualTo(0));
        Assert.That(s.Stages.Select(x => x.GetType()), Is.EqualTo(new[] { typeof(RepetitionPenalties), typeof(LogitBias) }));
    }

    [Test]
    public void Bad_biases_are_refused_by_name()
    {
        Assert.That(() => new Sampler(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [6] = 1 } }, 6),
            Throws.ArgumentException.With.Message.Contains("token 6 is outside the vocabulary (0..5)"));
        Assert.That(() => (SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [-1] = 1 } }).Validate(),
            Throws.ArgumentException.With.Message.Contains("--logit-bias"));
        Assert.That(() => (SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [2] = float.NaN } }).Validate(),
            Throws.ArgumentException.With.Message.Contains("--logit-bias"));
        Assert.That(DeviceSampling.Unsupported(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [2] = 1 } }, 512, false),
            Does.Contain("logit bias"));
    }
}
