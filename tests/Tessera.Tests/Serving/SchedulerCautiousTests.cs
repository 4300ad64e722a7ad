using NUnit.Framework;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Serving;

/// <summary>
/// Cautious NTP in the scheduler (what <c>serve</c> runs): each trial round is a forest of the request's rows in a step
/// shared with other requests, and the kept trial joins the sequence as an uncached chunk. It must draw exactly what
/// <see cref="TextGenerator"/>'s cautious decoding draws for the same seed: alone, beside other requests, as forked
/// choices, and when a pool too small for everyone preempts a sequence in the middle of its trials.
/// </summary>
public class SchedulerCautiousTests
{
    private const string File = "tinystories-656k-q8_0.gguf";

    private static GenerationOptions Cautious(ulong seed, int max = 48, int n = 1) => new()
    {
        MaxTokens = max, Choices = n, StopAtEndOfGeneration = false,
        Sampling = new SamplingOptions { Temperature = 1.0f, Seed = seed },
        Cautious = new CautiousOptions(),
    };

    private static (List<int> Tokens, CautiousStats Stats) Reference(string prompt, GenerationOptions o, int context)
    {
        var m = ModelCache.Get(File);
        using var state = m.Model.CreateState(context);
        var stats = new GenerationStats();
        var ids = new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode(prompt, true), o with { Choices = 1 }, stats)
            .Where(t => t.Token >= 0).Select(t => t.Token).ToList();
        return (ids, stats.Cautious!);
    }

    [Test]
    public async Task AloneItDrawsWhatTheGeneratorDrawsAndCountsTheSameWork()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 256 });
        foreach (ulong seed in new ulong[] { 1, 2, 3 })
        {
            var before = (e.Cautious.UncertainSteps, e.Cautious.Trials, e.Cautious.ExtraForwardPasses);
            var o = Cautious(seed);
            var got = await e.CompleteAsync("Once upon a time", o);
            var (want, stats) = Reference("Once upon a time", o, 256);
            Assert.That(got.TokenIds, Is.EqualTo(want), $"seed {seed}");
            Assert.That(stats.UncertainSteps, Is.GreaterThan(0), "the test exercises trials");
            Assert.That(e.Cautious.UncertainSteps - before.UncertainSteps, Is.EqualTo(stats.UncertainSteps));
            Assert.That(e.Cautious.Trials - before.Trials, Is.EqualTo(stats.Trials));
            Assert.That(e.Cautious.ExtraForwardPasses - before.ExtraForwardPasses, Is.EqualTo(stats.ExtraForwardPasses));
        }
        Assert.That(e.KvBlocksInUse, Is.Zero, "the forests' blocks came back");
    }

    [Test]
    public async Task BesideOtherRequestsAndAsChoicesEachGetsItsOwnTokens()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 256, MaxSequences = 8 });
        var prompts = new[] { "Once upon a time", "Lily and Ben went to the park.", "The little dog" };
        var cautious = prompts.Select((p, i) => e.CompleteAsync(p, Cautious((ulong)(10 + i)))).ToList();
        var plain = e.CompleteAsync("Tom had a red ball", new GenerationOptions
        {
            MaxTokens = 60, StopAtEndOfGeneration = false, Sampling = new SamplingOptions { Temperature = 0.8f, Seed = 7 },
        });
        var choices = e.CompleteChoicesAsync("One day, a bird", Cautious(20, 40, 3));
        for (int i = 0; i < prompts.Length; i++)
            Assert.That((await cautious[i]).TokenIds, Is.EqualTo(Reference(prompts[i], Cautious((ulong)(10 + i)), 256).Tokens), prompts[i]);
        Assert.That((await plain).TokenIds, Has.Count.EqualTo(60));
        var got = await choices;
        for (int c = 0; c < 3; c++)
            Assert.That(got[c].TokenIds, Is.EqualTo(Reference("One day, a bird", Cautious((ulong)(20 + c), 40), 256).Tokens), $"choice {c}");
        Assert.That(e.KvBlocksInUse, Is.Zero);
    }

    [Test]
    public async Task PreemptedInTheMiddleOfItsTrialsItGoesOnWhereItWas()
    {
        // 8 blocks of 16 for four sequences whose forests take up to 120 rows: trials and prompts preempt each other.
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File),
            new EngineOptions { ContextSize = 128, MaxSequences = 4, KvBlocks = 8 });
        var prompts = new[] { "Once upon a time", "Lily and Ben", "The cat sat", "A big red truck" };
        var runs = prompts.Select((p, i) => e.CompleteAsync(p, Cautious((ulong)(30 + i), 60))).ToList();
        for (int i = 0; i < prompts.Length; i++)
            Assert.That((await runs[i]).TokenIds, Is.EqualTo(Reference(prompts[i], Cautious((ulong)(30 + i), 60), 128).Tokens), prompts[i]);
        Assert.That(e.Scheduler.PreemptedAmidTrials, Is.GreaterThan(0), "a sequence really was preempted amid its trials");
        Assert.That(e.KvBlocksInUse, Is.Zero);
    }
}
