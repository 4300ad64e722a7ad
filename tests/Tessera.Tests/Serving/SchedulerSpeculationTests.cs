using NUnit.Framework;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Speculation;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Serving;

/// <summary>
/// Speculation inside the batching scheduler: proposers learn from its steps, a failing proposer fails only its own
/// request, and drafts never take a prompt's share of a step.
/// </summary>
public class SchedulerSpeculationTests
{
    private const string File = "tinystories-656k-q8_0.gguf";
    private static string Story => System.IO.File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "story.txt"));
    private static readonly GenerationOptions Greedy = new() { MaxTokens = 120, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };

    private static Task<InferenceEngine> Load(EngineOptions o) => InferenceEngine.LoadAsync(SharedData.Model(File), o);

    private static List<int> Reference(IReadOnlyList<int> prompt, GenerationOptions o)
    {
        var m = ModelCache.Get(File);
        using var state = m.Model.CreateState(512);
        return new TextGenerator(m.Model, m.Tokenizer).Generate(state, prompt, o with { Speculation = null })
            .Where(t => t.Token >= 0).Select(t => t.Token).ToList();
    }

    private static async Task<List<int>> Drain(Tessera.Serving.Sequence s)
    {
        var ids = new List<int>();
        await foreach (var c in s.Output.ReadAllAsync()) ids.AddRange(c.TokenIds);
        return ids;
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        for (var end = DateTime.UtcNow.AddSeconds(60); !condition(); await Task.Delay(2))  // a hang guard only
            if (DateTime.UtcNow > end) Assert.Fail($"timed out waiting for {what}");
    }

    [Test]
    public async Task TokenRecyclingLearnsFromTheSchedulersStepsAndDrafts()
    {
        // A cold recycling table knows nothing: every draft it makes comes from logits the scheduler showed it.
        using var e = await Load(new EngineOptions { ContextSize = 512, MaxSequences = 2 });
        var prompt = e.Tokenize("Once upon a time, there was a little girl named Lily.", addBos: true);
        var o = Greedy with { Speculation = new SpeculationOptions { Method = SpeculationMethod.Recycle, Adaptive = false } };
        var got = await Drain(e.Scheduler.Submit(prompt, o, default));
        Assert.That(got, Is.EqualTo(Reference(prompt, o)));
        Assert.That(e.SpeculativeDraftedTokens, Is.GreaterThan(0), "the table learnt successors and drafted");
        Assert.That(e.SpeculativeAcceptedTokens, Is.GreaterThan(0));
    }

    private sealed class FailingProposer(bool inBegin) : IDraftProposer
    {
        public long StateBytes => 0;
        public void Begin(ReadOnlySpan<int> prompt) { if (inBegin) throw new IOException("draft weights unreadable"); }
        public void Propose(ReadOnlySpan<int> context, DraftTree tree) => throw new IOException("draft pass failed");
    }

    [TestCase(true, "could not start: draft weights unreadable")]
    [TestCase(false, "the draft proposer failed: draft pass failed")]
    public async Task AFailingProposerFailsOnlyItsOwnRequest(bool inBegin, string message)
    {
        using var e = await Load(new EngineOptions { ContextSize = 512, MaxSequences = 4 });
        var s = e.Scheduler;
        var plainPrompt = e.Tokenize("The dog ran to the park", addBos: true);
        s.Paused = true;  // both in the same steps
        var plain = s.Submit(plainPrompt, Greedy, default);
        var bad = s.Submit(e.Tokenize("Once upon a time", addBos: true),
            Greedy with { Speculation = new SpeculationOptions { Adaptive = false, ProposerFactory = () => new FailingProposer(inBegin) } }, default);
        s.Paused = false;
        var ex = Assert.ThrowsAsync<InvalidOperationException>(async () => await Drain(bad))!;
        Assert.That(ex.Message, Does.Contain(message));
        Assert.That(await Drain(plain), Is.EqualTo(Reference(plainPrompt, Greedy)), "the request beside it ran on, unchanged");
        await Until(() => e.KvBlocksInUse == 0, "every block to come back");
    }

    [Test]
    public async Task DraftsLeaveAPromptHalfOfEachStep()
    {
        // A drafts trees as big as the step (31 rows of 32) in every step; B's 200-token prompt arrives meanwhile
        // and must still be prefilled at 16 tokens a step while A runs on, not wait for A to end.
        using var e = await Load(new EngineOptions { ContextSize = 512, MaxSequences = 2, MaxTokensPerStep = 32 });
        var s = e.Scheduler;
        var aPrompt = e.Tokenize("Once upon a time", addBos: true);
        var aOpts = Greedy with { MaxTokens = 400 };
        var truth = Reference(aPrompt, aOpts);
        var a = s.Submit(aPrompt, aOpts with
        {
            Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 31, ProposerFactory = () => new Generation.ScriptTreeProposer(aPrompt, truth) },
        }, default);
        await Until(() => a.Generated >= 2, "A to start");
        s.Paused = true;
        var bPrompt = e.Tokenize(Story, addBos: true).Take(200).ToArray();
        var b = s.Submit(bPrompt, Greedy with { MaxTokens = 4 }, default);
        s.Paused = false;
        var bGot = await Drain(b);
        Assert.That(await Drain(a), Is.EqualTo(truth));
        Assert.That(bGot, Is.EqualTo(Reference(bPrompt, Greedy with { MaxTokens = 4 })));
        Assert.That(a.LastTokenStep, Is.GreaterThan(b.FirstTokenStep), "A was still drafting while B's prompt ran");
        Assert.That(b.FirstTokenStep - b.AdmittedStep, Is.LessThanOrEqualTo(200 / 16 + 1), "B got half of every step");
        Assert.That(a.AcceptedTokens, Is.GreaterThan(200), "A's big trees were accepted throughout");
    }
}
