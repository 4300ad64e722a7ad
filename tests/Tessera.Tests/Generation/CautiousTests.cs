using NUnit.Framework;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Generation;

/// <summary>Cautious NTP on TinyStories: the paper's trial rule, the batched trials' bookkeeping (each trial reads its
/// own tree row, the kept trial's keys and values end up where plain decoding puts them), and its options.</summary>
public class CautiousTests
{
    private const string File = "tinystories-656k-f32.gguf";

    private static (int[] Tokens, GenerationStats Stats, float[] Logits, int Position) Run(GenerationOptions o, string prompt = "Once upon a time")
    {
        var m = ModelCache.Get(File);
        using var state = m.Model.CreateState(256);
        var stats = new GenerationStats();
        var ids = new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode(prompt, true), o, stats)
            .Where(t => t.Token >= 0).Select(t => t.Token).ToArray();
        return (ids, stats, state.Logits.ToArray(), state.Position);
    }

    [TestCase(0.0, 1)]
    [TestCase(0.01, 1)]
    [TestCase(0.755, 5)]
    [TestCase(1.5, 10)]
    [TestCase(4.0, 10)]
    public void TrialsGrowWithEntropyAsInThePaper(double entropy, int trials) =>
        Assert.That(new CautiousOptions().TrialsFor(entropy), Is.EqualTo(trials));

    [Test]
    public void WithOneTrialItIsPlainSampling()
    {
        var sampling = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = 9 };
        var plain = Run(new GenerationOptions { MaxTokens = 50, Sampling = sampling, StopAtEndOfGeneration = false });
        var one = Run(new GenerationOptions { MaxTokens = 50, Sampling = sampling, StopAtEndOfGeneration = false, Cautious = new CautiousOptions { MaxTrials = 1 } });
        Assert.That(one.Tokens, Is.EqualTo(plain.Tokens));
        Assert.That(one.Stats.Cautious!.UncertainSteps, Is.Zero);
    }

    [Test]
    public void NearGreedyTrialsAtEveryStepKeepTheGreedyContinuation()
    {
        // Temperature 0.01 makes every trial the greedy chain, and thresholds near 0 make every step run 4 trials: a
        // tree row at a wrong position or under a wrong parent, or the kept trial's cache misplaced, would leave the
        // greedy path. (The trials are alike here; CautiousTrialRowsTests checks that each reads its own row.)
        var greedy = Run(new GenerationOptions { MaxTokens = 40, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false });
        var o = new GenerationOptions
        {
            MaxTokens = 40, StopAtEndOfGeneration = false,
            Sampling = new SamplingOptions { Temperature = 0.01f, TopK = 0, TopP = 1, MinP = 0, Seed = 1 },
            Cautious = new CautiousOptions { MaxTrials = 4, EntropyLow = 0, EntropyHigh = 1e-30f },
        };
        var careful = Run(o);
        Assert.That(careful.Tokens, Is.EqualTo(greedy.Tokens));
        Assert.That(careful.Stats.Cautious!.UncertainSteps, Is.GreaterThan(3));
        Assert.That(careful.Stats.Cautious.Trials, Is.EqualTo(4 * careful.Stats.Cautious.UncertainSteps));
    }

    [Test]
    public void TheCacheAfterTrialsIsThePlainCacheOfTheKeptTokens()
    {
        var o = new GenerationOptions
        {
            MaxTokens = 60, StopAtEndOfGeneration = false,
            Sampling = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = 4 },
            Cautious = new CautiousOptions(),
        };
        var r = Run(o);
        Assert.That(r.Tokens, Has.Length.EqualTo(60));
        Assert.That(r.Stats.Cautious!.UncertainSteps, Is.GreaterThan(0));
        Assert.That(r.Stats.Cautious.ExtraForwardPasses, Is.GreaterThan(0));
        // Teacher-force prompt + output but the last token (which was drawn, not run) on a fresh cache.
        var m = ModelCache.Get(File);
        var prompt = m.Tokenizer.Encode("Once upon a time", true);
        using var fresh = m.Model.CreateState(256);
        m.Model.Forward(fresh, [.. prompt, .. r.Tokens[..^1]]);
        Assert.That(r.Position, Is.EqualTo(fresh.Position));
        double num = 0, den = 0;
        for (int i = 0; i < r.Logits.Length; i++) { num += Math.Pow(r.Logits[i] - fresh.Logits[i], 2); den += Math.Pow(fresh.Logits[i], 2); }
        Assert.That(num / den, Is.LessThan(1e-10), "the same logits as the plain cache of the same tokens");
    }

    [Test]
    public void SeededCautiousSamplingIsReproducible()
    {
        var o = new GenerationOptions { MaxTokens = 40, Sampling = new SamplingOptions { Temperature = 0.9f, Seed = 5 }, Cautious = new CautiousOptions() };
        Assert.That(Run(o).Tokens, Is.EqualTo(Run(o).Tokens));
    }

    [Test]
    public void OptionsItCannotHonourAreRefused()
    {
        var c = new CautiousOptions();
        Assert.That(Assert.Throws<ArgumentException>(() => new GenerationOptions { Cautious = c, Sampling = SamplingOptions.Greedy }.Validate())!.Message, Does.Contain("needs sampling"));
        Assert.That(Assert.Throws<ArgumentException>(() => new GenerationOptions { Cautious = c, Speculation = new Speculation.SpeculationOptions() }.Validate())!.Message, Does.Contain("--speculate"));
        Assert.That(Assert.Throws<ArgumentException>(() => new GenerationOptions { Cautious = c, TokenHealing = true }.Validate())!.Message, Does.Contain("--token-healing"));
        Assert.That(Assert.Throws<ArgumentException>(() => new GenerationOptions { Cautious = c with { MaxTrials = 40 } }.Validate())!.Message, Does.Contain("--cautious-trials 40"));
    }
}

/// <summary>The batched trials against each trial run alone: every trial's recorded log-likelihood is what its own
/// tokens get from the model one chain at a time, so no trial read another's row.</summary>
public class CautiousTrialRowsTests
{
    [Test]
    public void EachTrialsLikelihoodIsItsOwnChainsUnderTheModel()
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var prompt = m.Tokenizer.Encode("Once upon a time, there was a", true);
        using var state = m.Model.CreateState(128);
        m.Model.Forward(state, prompt.ToArray());
        var sampler = new Sampler(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = 3 }, m.Config.VocabSize);
        var logits = state.Logits.ToArray();
        int first = sampler.SampleMeasured(logits.ToArray(), out double p, out _);
        var trials = new CautiousTrials(m.Model, m.Tokenizer, new CautiousOptions());
        var stats = new CautiousStats();
        int kept = trials.Run(state, sampler, logits, first, p, 6, 20, stats);
        Assert.That(trials.LastTrials, Is.EqualTo(6));
        var distinct = new HashSet<string>();
        int longest = 0;
        for (int i = 0; i < 6; i++)
        {
            var t = trials.Trial(i).ToArray();
            distinct.Add(string.Join(',', t));
            longest = Math.Max(longest, t.Length);
            using var alone = m.Model.CreateState(128);
            m.Model.Forward(alone, prompt.ToArray());
            double nll = 0;
            foreach (int token in t)
            {
                var l = alone.Logits;
                double max = l.Max(), sum = l.Sum(x => Math.Exp(x - max));
                nll -= l[token] - max - Math.Log(sum);
                m.Model.Forward(alone, [token]);
            }
            Assert.That(trials.Nll(i), Is.EqualTo(nll).Within(1e-3 * Math.Max(1, nll)), $"trial {i}: {string.Join(',', t)}");
        }
        Assert.That(distinct.Count, Is.GreaterThan(2), "the trials differ");
        Assert.That(longest, Is.GreaterThan(2), "trials ran several rounds");
        // The kept one has the lowest perplexity.
        var keptTokens = trials.Kept.AsSpan(0, kept).ToArray();
        int best = Enumerable.Range(0, 6).MinBy(i => trials.Nll(i) / trials.Trial(i).Length);
        Assert.That(keptTokens, Is.EqualTo(trials.Trial(best).ToArray()));
        Assert.That(state.Position, Is.EqualTo(prompt.Count + kept - 1), "the kept trial but its last token is cached");
    }
}
