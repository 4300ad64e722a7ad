using NUnit.Framework;
using Tessera.Api;
using Tessera.Chat;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Serving;

/// <summary>
/// The continuous-batching scheduler through <see cref="InferenceEngine"/>: whatever runs beside a request, however
/// its prompt is chunked, whether it is preempted or starts from cached blocks, it gets exactly the tokens the plain
/// single-sequence path (<see cref="TextGenerator"/> over a contiguous cache) gives it.
/// </summary>
public class SchedulerTests
{
    private const string File = "tinystories-656k-q8_0.gguf";
    private static string Story => System.IO.File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "story.txt"));

    private static Task<InferenceEngine> Load(EngineOptions o) => InferenceEngine.LoadAsync(SharedData.Model(File), o);

    /// <summary>The reference: the single-sequence generator on its own contiguous cache.</summary>
    private static List<int> Reference(string prompt, GenerationOptions o, int context)
    {
        var m = ModelCache.Get(File);
        using var state = m.Model.CreateState(context);
        return new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode(prompt, true), o)
            .Where(t => t.Token >= 0).Select(t => t.Token).ToList();
    }

    private static async Task<List<int>> Tokens(IAsyncEnumerable<GenerationChunk> chunks)
    {
        var ids = new List<int>();
        await foreach (var c in chunks) ids.AddRange(c.TokenIds);
        return ids;
    }

    private static GenerationOptions Sampled(int max, ulong seed, bool stopAtEos = true) => new()
    {
        MaxTokens = max,
        StopAtEndOfGeneration = stopAtEos,
        Sampling = new SamplingOptions { Temperature = 0.9f, Seed = seed },
    };

    private static async Task Until(Func<bool> condition, string what)
    {
        // A hang guard, not a timing assertion.
        for (var end = DateTime.UtcNow.AddSeconds(60); !condition(); await Task.Delay(5))
            if (DateTime.UtcNow > end) Assert.Fail($"timed out waiting for {what}");
    }

    private static string[] Prompts()
    {
        var words = Story.Split(' ');
        return Enumerable.Range(0, 24).Select(i => string.Join(' ', words.Skip(i * 7).Take(3 + (i * 13) % 60))).ToArray();
    }

    [Test]
    public async Task ConcurrentSeededRequestsGetTheSingleSequencePathsTokens()
    {
        using var e = await Load(new EngineOptions { ContextSize = 512, MaxSequences = 16, MaxTokensPerStep = 48 });
        var prompts = Prompts();
        var opts = prompts.Select((_, i) => Sampled(10 + (i * 11) % 50, (ulong)(1000 + i), stopAtEos: i % 3 != 0)).ToArray();
        var got = await Task.WhenAll(prompts.Select((p, i) => Tokens(e.GenerateAsync(p, opts[i]))));
        for (int i = 0; i < prompts.Length; i++)
            Assert.That(got[i], Is.EqualTo(Reference(prompts[i], opts[i], 512)), $"request {i}: {prompts[i]}");
        Assert.That(got.Select(g => string.Join(',', g)).Distinct().Count(), Is.GreaterThan(20), "the requests really differ");
        Assert.That(e.KvBlocksInUse, Is.EqualTo(0), "every block came back");
        Assert.That(e.RunningRequests, Is.EqualTo(0));
    }

    [Test]
    public async Task SpeculatingRequestsBesidePlainOnesGetTheSingleSequencePathsTokens()
    {
        // Lookup chains, Token Recycling trees, self-speculation and a draft model, greedy and seeded, beside plain
        // requests, some preempted by a small pool: every request's tokens are the plain single-sequence path's.
        using var e = await Load(new EngineOptions { ContextSize = 256, MaxSequences = 8, MaxTokensPerStep = 96, KvBlocks = 40 });
        var draft = ModelCache.Get("tinystories-656k-q4_0.gguf").Model;
        Speculation.SpeculationOptions[] specs =
        [
            new() { Method = Speculation.SpeculationMethod.Lookup, Adaptive = false },
            new() { Method = Speculation.SpeculationMethod.Recycle, Adaptive = false, DraftMax = 24 },
            new() { Method = Speculation.SpeculationMethod.Self, Adaptive = false },
            new() { Method = Speculation.SpeculationMethod.Draft, DraftModel = draft, Adaptive = false },
            new() { Method = Speculation.SpeculationMethod.Recycle },
        ];
        var prompts = Prompts().Take(12).ToArray();
        var opts = prompts.Select((_, i) =>
        {
            var o = i % 2 == 0 ? Sampled(60, (ulong)(50 + i), stopAtEos: false) : new GenerationOptions { MaxTokens = 60, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
            return i % 6 == 5 ? o : o with { Speculation = specs[i % specs.Length] };
        }).ToArray();
        // Every third request drafts trees whose right branch is never the first child (from the reference tokens),
        // so each accepted path must be moved into place before the next step reads it.
        var m = ModelCache.Get(File);
        var refs = prompts.Select((p, i) => Reference(p, opts[i] with { Speculation = null }, 256)).ToArray();
        for (int i = 0; i < prompts.Length; i += 3)
        {
            var prompt = m.Tokenizer.Encode(prompts[i], true);
            var truth = refs[i];
            opts[i] = opts[i] with { Speculation = new Speculation.SpeculationOptions { Adaptive = false, DraftMax = 12, ProposerFactory = () => new Generation.ScriptTreeProposer(prompt, truth) } };
        }
        var got = await Task.WhenAll(prompts.Select((p, i) => Tokens(e.GenerateAsync(p, opts[i]))));
        for (int i = 0; i < prompts.Length; i++)
            Assert.That(got[i], Is.EqualTo(refs[i]), $"request {i} ({opts[i].Speculation?.Method.ToString() ?? "plain"})");
        TestContext.Out.WriteLine($"drafted {e.SpeculativeDraftedTokens}, accepted {e.SpeculativeAcceptedTokens}, preemptions {e.Preemptions}");
        Assert.That(e.SpeculativeDraftedTokens, Is.GreaterThan(0));
        Assert.That(e.SpeculativeAcceptedTokens, Is.GreaterThan(100), "the scripted trees' right branches were accepted");
        Assert.That(e.KvBlocksInUse, Is.EqualTo(0), "every block came back");
    }

    [Test]
    public async Task ATinyKvPoolPreemptsYetEveryRequestCompletesWithItsOwnTokens()
    {
        // 8 blocks of 16 = one context of 128; six requests that each grow to about 100 positions cannot all fit.
        using var e = await Load(new EngineOptions { ContextSize = 128, MaxSequences = 6, MaxTokensPerStep = 64, KvBlocks = 8 });
        var prompts = Prompts().Skip(4).Take(6).Select(p => string.Join(' ', p.Split(' ').Take(25))).ToArray();
        var opts = prompts.Select((_, i) => Sampled(70, (ulong)(7 + i), stopAtEos: false)).ToArray();
        var got = await Task.WhenAll(prompts.Select((p, i) => Tokens(e.GenerateAsync(p, opts[i]))));
        Assert.That(e.Preemptions, Is.GreaterThan(0), "the pool was too small, so sequences were preempted");
        for (int i = 0; i < prompts.Length; i++)
            Assert.That(got[i], Is.EqualTo(Reference(prompts[i], opts[i], 128)), $"request {i}");
        Assert.That(e.KvBlocksInUse, Is.EqualTo(0), "every block came back");
        // ...and the engine still serves.
        Assert.That(await Tokens(e.GenerateAsync("Once upon a time", Sampled(5, 1))), Has.Count.EqualTo(5));
    }

    [Test]
    public async Task RunningStreamsDecodeInEveryStepWhileALongPromptIsPrefilledInChunks()
    {
        using var e = await Load(new EngineOptions { ContextSize = 512, MaxSequences = 2, MaxTokensPerStep = 16 });
        var s = e.Scheduler;
        var a = s.Submit(e.Tokenize("Once upon a time", addBos: true), Sampled(400, 3, stopAtEos: false), default);
        await Until(() => a.Generated >= 2, "the first stream to start");
        var longPrompt = e.Tokenize(Story, addBos: true).Take(400).ToArray();
        var b = s.Submit(longPrompt, Sampled(4, 4, stopAtEos: false), default);
        await foreach (var _ in b.Output.ReadAllAsync()) { }
        await foreach (var _ in a.Output.ReadAllAsync()) { }
        // B's prompt (400 tokens, 15 a step beside A's decode) took many steps, and A ran across all of them.
        Assert.That(b.FirstTokenStep - b.AdmittedStep, Is.GreaterThanOrEqualTo(400 / 15), "the prompt was prefilled in chunks");
        Assert.That(a.FirstTokenStep, Is.LessThan(b.AdmittedStep));
        Assert.That(a.LastTokenStep, Is.GreaterThan(b.FirstTokenStep));
        Assert.That(a.MaxStepsBetweenTokens, Is.EqualTo(1), "the running stream got its token in every step (decode-first)");
    }

    [Test]
    public async Task APromptThatStartsWithCachedBlocksSkipsThemAndGetsTheSameTokens()
    {
        using var e = await Load(new EngineOptions { ContextSize = 512, MaxSequences = 4 });
        var first = e.Tokenize(Story, addBos: true).Take(100).ToArray();
        string firstText = e.Detokenize(first.Skip(1).ToArray());
        Assume.That(e.CountTokens(firstText), Is.EqualTo(100), "the text round-trips to the same 100 tokens");
        var greedy = new GenerationOptions { MaxTokens = 5, Sampling = SamplingOptions.Greedy };
        await Tokens(e.GenerateAsync(firstText, greedy));
        long before = e.PrefixHitTokens;
        string second = firstText + " The end. Then a cat came to play with them.";
        var got = await Tokens(e.GenerateAsync(second, greedy));
        Assert.That(e.PrefixHitTokens - before, Is.EqualTo(96), "the six full blocks of the shared 100-token prefix");
        Assert.That(got, Is.EqualTo(Reference(second, greedy, 512)));
    }

    [Test]
    public async Task AMultiTurnChatReusesTheEarlierTurnsBlocks()
    {
        using var e = await Load(new EngineOptions { ContextSize = 512 });
        var greedy = new GenerationOptions { MaxTokens = 20, Sampling = SamplingOptions.Greedy };
        var turn1 = new List<ChatMessage> { new("user", Story[..400]) };
        var reply = new System.Text.StringBuilder();
        await foreach (var c in e.GenerateAsync(turn1, greedy)) reply.Append(c.Text);
        long before = e.PrefixHitTokens;
        var turn2 = new List<ChatMessage>(turn1) { new("assistant", reply.ToString()), new("user", "And then?") };
        await Tokens(e.GenerateAsync(turn2, greedy));
        int firstTurnTokens = e.CountTokens(turn1);
        Assert.That(e.PrefixHitTokens - before, Is.GreaterThanOrEqualTo(firstTurnTokens / 16 * 16 - 16),
            "the second turn started from the first turn's cached blocks");
    }

    [Test]
    public async Task CancellingARequestFreesItsBlocks()
    {
        using var e = await Load(new EngineOptions { ContextSize = 512 });
        using var cts = new CancellationTokenSource();
        int chunks = 0;
        Assert.ThrowsAsync(Is.InstanceOf<OperationCanceledException>(), async () =>
        {
            await foreach (var _ in e.GenerateAsync("Once upon a time", Sampled(500, 1, stopAtEos: false), cts.Token))
                if (++chunks == 3) { Assert.That(e.KvBlocksInUse, Is.GreaterThan(0)); cts.Cancel(); }
        });
        await Until(() => e.KvBlocksInUse == 0 && e.RunningRequests == 0, "the cancelled request's blocks to be freed");
        Assert.That(await Tokens(e.GenerateAsync("Once upon a time", Sampled(3, 1))), Has.Count.EqualTo(3));
    }

    [Test]
    public async Task RequestsOverALimitAreRefusedByName()
    {
        using var e = await Load(new EngineOptions { ContextSize = 64 });
        var ex = Assert.ThrowsAsync<ArgumentException>(async () => await Tokens(e.GenerateAsync(Story, Sampled(5, 1))))!;
        Assert.That(ex.Message, Does.Contain("context of 64"));
        Assert.That(Assert.Throws<ArgumentException>(() => new EngineOptions { MaxSequences = 0 }.Validate())!.ParamName, Is.EqualTo("MaxSequences"));
        Assert.That(Assert.Throws<ArgumentException>(() => new EngineOptions { MaxSequences = 8, MaxTokensPerStep = 4 }.Validate())!.ParamName, Is.EqualTo("MaxTokensPerStep"));
        Assert.That(Assert.Throws<ArgumentException>(() => new EngineOptions { KvBlockSize = 12 }.Validate())!.ParamName, Is.EqualTo("KvBlockSize"));
        var small = Assert.ThrowsAsync<ArgumentException>(() => Load(new EngineOptions { ContextSize = 512, KvBlocks = 4 }))!;
        Assert.That(small.Message, Does.Contain("KvBlocks 4"));
    }
}
