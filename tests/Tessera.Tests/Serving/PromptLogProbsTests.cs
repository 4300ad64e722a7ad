using NUnit.Framework;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Serving;

/// <summary><see cref="GenerationOptions.PromptLogProbs"/> in the scheduler: every prompt position is scored, also
/// when the prompt's blocks are already cached by an earlier request, when it is prefilled in several chunks, and when
/// it is preempted mid-prompt and recomputed; the scores are the model's.</summary>
public class PromptLogProbsTests
{
    private const string File = "tinystories-656k-q8_0.gguf";
    private const string Prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun with her dog. One day";

    private static double[] Reference(IReadOnlyList<int> ids)
    {
        var m = ModelCache.Get(File);
        using var s = m.Model.CreateState(256);
        var all = new float[ids.Count * m.Config.VocabSize];
        m.Model.ForwardTree(s, ids.ToArray(), Enumerable.Range(-1, ids.Count).ToArray(), all);  // a chain: row i's parent is i - 1
        int v = m.Config.VocabSize;
        return [.. Enumerable.Range(1, ids.Count - 1).Select(k =>
        {
            var row = all.AsSpan((k - 1) * v, v).ToArray();
            double max = row.Max(), z = max + Math.Log(row.Sum(x => Math.Exp(x - max)));
            return row[ids[k]] - z;
        })];
    }

    private static async Task<IReadOnlyList<TokenLogProb>> Scores(InferenceEngine e, int maxTokens, string prompt = Prompt)
    {
        IReadOnlyList<TokenLogProb>? got = null;
        await foreach (var c in e.GenerateAsync(prompt, new GenerationOptions { MaxTokens = maxTokens, LogProbs = 1, PromptLogProbs = true, Sampling = SamplingOptions.Greedy }))
            if (c.PromptLogProbs is { } p) { Assert.That(got, Is.Null, "sent once"); got = p; }
        return got ?? throw new AssertionException("no prompt scores came");
    }

    [Test]
    public async Task ScoresAreTheModelsInChunksCachedOrPreempted()
    {
        var ids = ModelCache.Get(File).Tokenizer.Encode(Prompt, true);
        var want = Reference(ids);
        // Chunks of 16 tokens, and a prompt whose blocks the first request left in the prefix cache.
        using (var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 256, MaxTokensPerStep = 16, MaxSequences = 4 }))
        {
            for (int round = 0; round < 2; round++)
            {
                var got = await Scores(e, round == 0 ? 0 : 4);
                Assert.That(got.Select(g => g.Token), Is.EqualTo(ids.Skip(1)));
                Assert.That(got.Select(g => (double)g.LogProb), Is.EqualTo(want).Within(1e-4), $"round {round}");
            }
        }
        // A pool too small for four prompts of four blocks at once: prompts are preempted while scored, and recomputed.
        string story = System.IO.File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "story.txt"));
        string longer = story[..story.IndexOf(' ', 260)];
        var longIds = ModelCache.Get(File).Tokenizer.Encode(longer, true);
        Assert.That(longIds.Count, Is.GreaterThan(48));
        var longWant = Reference(longIds);
        using (var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 128, MaxSequences = 4, MaxTokensPerStep = 16, KvBlocks = 8 }))
        {
            var runs = Enumerable.Range(0, 4).Select(_ => Scores(e, 20, longer)).ToList();
            foreach (var r in runs) Assert.That((await r).Select(g => (double)g.LogProb), Is.EqualTo(longWant).Within(1e-4));
            Assert.That(e.Scheduler.PreemptedWhileScoring, Is.GreaterThan(0), "a prompt really was preempted while it was scored");
        }
    }

    [Test]
    public void ItNeedsLogprobsAndTheGivenPrompt()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => new GenerationOptions { PromptLogProbs = true }.Validate())!.Message, Does.Contain("need logprobs"));
        Assert.That(Assert.Throws<ArgumentException>(() => new GenerationOptions { PromptLogProbs = true, LogProbs = 0, TokenHealing = true }.Validate())!.Message, Does.Contain("token healing"));
    }
}
