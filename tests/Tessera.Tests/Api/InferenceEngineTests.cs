using NUnit.Framework;
using Tessera.Api;
using Tessera.Chat;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Api;

public class InferenceEngineTests
{
    private static InferenceEngine? _engine;
    private static async Task<InferenceEngine> Engine() =>
        _engine ??= await InferenceEngine.LoadAsync(SharedData.Model("tinystories-656k-q8_0.gguf"));

    private static GenerationOptions Greedy(int n) => new() { MaxTokens = n, Sampling = SamplingOptions.Greedy };

    [OneTimeTearDown]
    public void TearDown() => _engine?.Dispose();

    [Test]
    public async Task CompleteAsyncGivesLlamaCppsGreedyTokens()
    {
        var g = GoldenCase.Load("tinystories-656k-q8_0", 0);
        var e = await Engine();
        var r = await e.CompleteAsync(g.Prompt, Greedy(20));
        Assert.That(r.TokenIds, Is.EqualTo(g.GreedyTokens.Take(20)));
        Assert.That(r.PromptTokens, Is.EqualTo(g.PromptTokens.Length));
        Assert.That(r.FinishReason, Is.EqualTo(FinishReason.MaxTokens));
        Assert.That(r.Text, Does.StartWith(", a little girl named Lily"));
    }

    [Test]
    public async Task StreamedChunksAddUpToTheCompleteResult()
    {
        var e = await Engine();
        var whole = await e.CompleteAsync("Lily and Ben", Greedy(30));
        var text = new System.Text.StringBuilder();
        var ids = new List<int>();
        GenerationChunk? last = null;
        await foreach (var c in e.GenerateAsync("Lily and Ben", Greedy(30)))
        {
            text.Append(c.Text);
            ids.AddRange(c.TokenIds);
            last = c;
        }
        Assert.That(ids, Is.EqualTo(whole.TokenIds));
        Assert.That(text.ToString(), Is.EqualTo(whole.Text));
        Assert.That(last!.FinishReason, Is.EqualTo(FinishReason.MaxTokens));
    }

    [Test]
    public async Task ConcurrentRequestsGiveTheSameOutputAsAlone()
    {
        var e = await Engine();
        var o = new GenerationOptions { MaxTokens = 24, Sampling = new SamplingOptions { Temperature = 1, Seed = 11 } };
        var alone = await e.CompleteAsync("The cat sat", o);
        var together = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => e.CompleteAsync("The cat sat", o)));
        foreach (var r in together) Assert.That(r.TokenIds, Is.EqualTo(alone.TokenIds));
    }

    [Test]
    public async Task CancellationStopsTheStream()
    {
        var e = await Engine();
        using var cts = new CancellationTokenSource();
        int chunks = 0;
        Assert.ThrowsAsync(Is.InstanceOf<OperationCanceledException>(), async () =>
        {
            await foreach (var _ in e.GenerateAsync("Once upon a time", Greedy(200), cts.Token))
                if (++chunks == 3) cts.Cancel();
        });
        Assert.That(chunks, Is.EqualTo(3));
        // the engine is free again afterwards
        var r = await e.CompleteAsync("Once upon a time", Greedy(2));
        Assert.That(r.TokenIds, Has.Count.EqualTo(2));
    }

    [Test]
    public async Task ChatUsesThePlainTranscriptWithoutATemplate()
    {
        var e = await Engine();
        var text = new System.Text.StringBuilder();
        await foreach (var c in e.GenerateAsync([new ChatMessage("user", "Tell me a story.")], Greedy(16))) text.Append(c.Text);
        Assert.That(text.ToString(), Does.Not.Contain("\nUser:"));
    }

    [Test]
    public async Task TokenizeCountAndDetokenize()
    {
        var e = await Engine();
        var ids = e.Tokenize("Once upon a time");
        Assert.That(ids, Is.EqualTo(new[] { 80, 147, 201, 282, 57 })); // golden p0 without BOS
        Assert.That(e.CountTokens("Once upon a time"), Is.EqualTo(6));
        Assert.That(e.Detokenize(ids), Is.EqualTo("Once upon a time"));
    }

    [Test]
    public async Task PromptOverTheContextIsRejected()
    {
        using var small = await InferenceEngine.LoadAsync(SharedData.Model("tinystories-656k-q8_0.gguf"), new EngineOptions { ContextSize = 4 });
        var ex = Assert.ThrowsAsync<ArgumentException>(async () => await small.CompleteAsync("Once upon a time there was"))!;
        Assert.That(ex.Message, Does.Contain("context of 4"));
    }
}
