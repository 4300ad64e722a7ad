using NUnit.Framework;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Serving;

/// <summary>
/// <see cref="GenerationOptions.Choices"/> (OpenAI's <c>n</c>): the prompt is computed once and every other choice is
/// a fork of its KV cache (shared full blocks, a copied partial block). Forking must not change a token: choice
/// <c>i</c> with seed <c>s</c> gives exactly what a one-choice request with seed <c>s + i</c> gives on the plain
/// single-sequence path, whatever the prompt's length against the block size, under a pool too small to fork in,
/// and with speculation.
/// </summary>
public class ChoicesTests
{
    private const string File = "tinystories-656k-q8_0.gguf";

    private static Task<InferenceEngine> Load(EngineOptions o) => InferenceEngine.LoadAsync(SharedData.Model(File), o);

    private static List<int> Reference(string prompt, GenerationOptions o, int context)
    {
        var m = ModelCache.Get(File);
        using var state = m.Model.CreateState(context);
        return new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode(prompt, true), o with { Choices = 1 })
            .Where(t => t.Token >= 0).Select(t => t.Token).ToList();
    }

    private static GenerationOptions Sampled(int max, ulong seed, int n) => new()
    {
        MaxTokens = max, Choices = n, StopAtEndOfGeneration = false,
        Sampling = new SamplingOptions { Temperature = 1.0f, Seed = seed },
    };

    /// <summary>Each choice against the reference with seed + i.</summary>
    private static void AssertChoices(IReadOnlyList<GenerationResult> got, string prompt, GenerationOptions o, int context)
    {
        Assert.That(got, Has.Count.EqualTo(o.Choices));
        for (int i = 0; i < o.Choices; i++)
        {
            var single = o with { Sampling = o.Sampling with { Seed = o.Sampling.Seed + (ulong)i } };
            Assert.That(got[i].TokenIds, Is.EqualTo(Reference(prompt, single, context)), $"choice {i} of '{prompt}'");
        }
        Assert.That(got.Select(r => string.Join(',', r.TokenIds)).Distinct().Count(), Is.EqualTo(o.Choices), "the choices differ");
    }

    /// <summary>Words of the story from about word <paramref name="start"/> (so that no prompt starts with another's
    /// cached blocks) that are exactly <paramref name="tokens"/> tokens with BOS.</summary>
    private static string PromptOf(int tokens, Tessera.Tokenization.Tokenizer tokenizer, int start)
    {
        var words = System.IO.File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "story.txt")).Split(' ');
        for (int from = start; from < words.Length; from++)
            for (int k = 1; k <= tokens && from + k <= words.Length; k++)
            {
                string p = string.Join(' ', words, from, k);
                int n = tokenizer.Encode(p, true).Count;
                if (n == tokens) return p;
                if (n > tokens) break;
            }
        throw new AssertionException($"no run of story words is {tokens} tokens");
    }

    [Test]
    public async Task EachChoiceIsTheOneChoiceRunWithItsSeedAndThePromptIsComputedOnce()
    {
        using var e = await Load(new EngineOptions { ContextSize = 256, MaxSequences = 8 });
        var m = ModelCache.Get(File);
        // Prompts of 6, 16 (a whole block: nothing to copy), 17 and 31 tokens against blocks of 16.
        foreach (int length in new[] { 6, 16, 17, 31 })
        {
            string prompt = PromptOf(length, m.Tokenizer, start: length * 5);
            long computed = e.PromptTokensComputed, forks = e.Forks;
            var o = Sampled(24, (ulong)(40 + length), 4);
            AssertChoices(await e.CompleteChoicesAsync(prompt, o), prompt, o, 256);
            Assert.That(e.PromptTokensComputed - computed, Is.EqualTo(length), "the prompt ran once for four choices");
            Assert.That(e.PrefixHitTokens, Is.Zero);
            Assert.That(e.Forks - forks, Is.EqualTo(3));
            Assert.That(e.KvBlocksInUse, Is.EqualTo(0), "every block came back");
        }
    }

    [Test]
    public async Task GreedyChoicesAreAllTheGreedyContinuation()
    {
        using var e = await Load(new EngineOptions { ContextSize = 256 });
        var o = new GenerationOptions { MaxTokens = 30, Choices = 3, Sampling = SamplingOptions.Greedy };
        var got = await e.CompleteChoicesAsync("Lily and Ben", o);
        var greedy = Reference("Lily and Ben", o, 256);
        Assert.That(got.Select(r => r.TokenIds), Has.All.EqualTo(greedy));
        Assert.That(got.Select(r => r.Text).Distinct().Count(), Is.EqualTo(1));
    }

    [Test]
    public async Task WithoutBlocksToForkAChoiceComputesItsOwnPromptAndGetsTheSameTokens()
    {
        // 8 blocks of 16 and prompts of about 40 tokens growing by 60: the later choices find no block to copy
        // into and wait, or are preempted, and recompute from the prefix cache.
        using var e = await Load(new EngineOptions { ContextSize = 128, MaxSequences = 4, MaxTokensPerStep = 64, KvBlocks = 8 });
        const string prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun with her dog.";
        var o = Sampled(60, 5, 4);
        AssertChoices(await e.CompleteChoicesAsync(prompt, o), prompt, o, 128);
        Assert.That(e.Preemptions + (3 - e.Forks), Is.GreaterThan(0), "the pool really was too small");
        Assert.That(e.KvBlocksInUse, Is.EqualTo(0));
    }

    [Test]
    public async Task SpeculatingChoicesGetThePlainTokens()
    {
        using var e = await Load(new EngineOptions { ContextSize = 256, MaxSequences = 4 });
        var o = Sampled(40, 11, 3) with { Speculation = new Speculation.SpeculationOptions { Method = Speculation.SpeculationMethod.Lookup } };
        const string prompt = "The dog ran to the park. The dog ran to the";
        AssertChoices(await e.CompleteChoicesAsync(prompt, o), prompt, o with { Speculation = null }, 256);
    }

    [Test]
    public async Task ChoicesStreamInterleavedEachEndingOnceAndCancellingFreesThemAll()
    {
        using var e = await Load(new EngineOptions { ContextSize = 512, MaxSequences = 8 });
        var ends = new int[4];
        var seen = new HashSet<int>();
        await foreach (var c in e.GenerateAsync("Once upon a time", Sampled(12, 3, 4)))
        {
            seen.Add(c.Choice);
            if (c.FinishReason is not null) ends[c.Choice]++;
        }
        Assert.That(seen, Is.EquivalentTo(new[] { 0, 1, 2, 3 }));
        Assert.That(ends, Has.All.EqualTo(1));

        using var cts = new CancellationTokenSource();
        int chunks = 0;
        Assert.ThrowsAsync(Is.InstanceOf<OperationCanceledException>(), async () =>
        {
            await foreach (var _ in e.GenerateAsync("Once upon a time", Sampled(400, 1, 4), cts.Token))
                if (++chunks == 12) cts.Cancel();
        });
        for (var end = DateTime.UtcNow.AddSeconds(60); e.KvBlocksInUse != 0 || e.RunningRequests != 0; await Task.Delay(5))
            if (DateTime.UtcNow > end) Assert.Fail("the cancelled choices kept their blocks");
    }

    [Test]
    public async Task TooManyChoicesAreRefusedByName()
    {
        using var e = await Load(new EngineOptions { ContextSize = 128, MaxSequences = 4 });
        var over = Assert.ThrowsAsync<ArgumentException>(async () => await e.CompleteChoicesAsync("Once", Sampled(4, 1, 5)))!;
        Assert.That(over.Message, Does.Contain("n 5").And.Contain("4 sequences"));
        var limit = Assert.ThrowsAsync<ArgumentException>(async () => await e.CompleteChoicesAsync("Once", Sampled(4, 1, 17)))!;
        Assert.That(limit.Message, Does.Contain("n 17: must be 1 to 16"));
        var one = Assert.ThrowsAsync<ArgumentException>(async () => await e.CompleteAsync("Once", Sampled(4, 1, 2)))!;
        Assert.That(one.Message, Does.Contain("CompleteChoicesAsync"));
    }
}
