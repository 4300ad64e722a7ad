using NUnit.Framework;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Generation;

/// <summary>
/// The end-of-generation marker never reaches the output. llama.cpp's greedy continuation of golden prompt p2 ("The
/// cat sat on the mat.") on TinyStories is the four ordinary tokens that spell "&lt;|end_story|&gt;" (the text of its
/// EOS token) and then EOS: the library, the engine's scheduler, the CLI and the server must stop there with no text
/// (see also CliTests and RawHttpTests), and show it only under <c>--special</c> / <c>--ignore-eos</c>.
/// </summary>
public class EndMarkerTests
{
    private const string Model = "tinystories-656k-q8_0";
    private static GoldenCase Golden => GoldenCase.Load(Model, 2);

    private static (List<int> Tokens, string Text, GenerationStats Stats) Library(GenerationOptions o)
    {
        var m = ModelCache.Get(Model + ".gguf");
        using var state = m.Model.CreateState(128);
        var stats = new GenerationStats();
        var ids = new List<int>();
        var text = new System.Text.StringBuilder();
        foreach (var step in new TextGenerator(m.Model, m.Tokenizer).Generate(state, Golden.PromptTokens, o, stats))
        {
            if (step.Token >= 0) ids.Add(step.Token);
            text.Append(step.Text);
        }
        return (ids, text.ToString(), stats);
    }

    private static GenerationOptions Greedy => new() { MaxTokens = 20, Sampling = SamplingOptions.Greedy };

    [Test]
    public void TheReferenceSpellsTheMarkerBeforeEos()
    {
        var m = ModelCache.Get(Model + ".gguf");
        Assert.That(Golden.GreedyTokens[^1], Is.EqualTo(2), "llama.cpp ends with EOS");
        Assert.That(m.Tokenizer.EndOfGenerationTexts, Does.Contain("<|end_story|>"));
        Assert.That(m.Tokenizer.Decode(Golden.GreedyTokens[..^1]), Is.EqualTo("<|end_story|>"));
    }

    [Test]
    public void LibraryStopsAtTheSpelledMarkerWithoutShowingIt()
    {
        var r = Library(Greedy);
        Assert.That(r.Text, Is.Empty);
        Assert.That(r.Stats.FinishReason, Is.EqualTo(FinishReason.EndOfGeneration));
        Assert.That(r.Tokens, Is.EqualTo(Golden.GreedyTokens[..^1]), "the tokens are llama.cpp's, up to its EOS");
    }

    [Test]
    public void SpecialAndIgnoreEosShowTheMarker()
    {
        var special = Library(Greedy with { RenderSpecial = true });
        Assert.That(special.Text, Is.EqualTo("<|end_story|>"));
        Assert.That(special.Stats.FinishReason, Is.EqualTo(FinishReason.EndOfGeneration), "the EOS token itself still ends it");
        var past = Library(Greedy with { StopAtEndOfGeneration = false, MaxTokens = 8 });
        Assert.That(past.Text, Does.StartWith("<|end_story|>"));
        Assert.That(past.Tokens, Has.Count.EqualTo(8));
    }

    [Test]
    public async Task EngineSchedulerStopsAtTheMarkerToo()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(Model + ".gguf"));
        var r = await e.CompleteAsync(Golden.Prompt, Greedy);
        Assert.That(r.Text, Is.Empty);
        Assert.That(r.FinishReason, Is.EqualTo(FinishReason.EndOfGeneration));
        var streamed = new System.Text.StringBuilder();
        await foreach (var c in e.GenerateAsync(Golden.Prompt, Greedy)) streamed.Append(c.Text);
        Assert.That(streamed.ToString(), Is.Empty);
        var special = await e.CompleteAsync(Golden.Prompt, Greedy with { RenderSpecial = true });
        Assert.That(special.Text, Is.EqualTo("<|end_story|>"));
    }

    [Test]
    public void AMarkerSplitOverPiecesEndsGenerationAndAUserStopIsNotAnEnd()
    {
        var f = new StopStringFilter(["THE END"], ["<|end_story|>"]);
        Assert.That(f.Add("smiled.<|"), Is.EqualTo(("smiled.", false)));
        Assert.That(f.Add("end"), Is.EqualTo(("", false)));
        Assert.That(f.Add("_story|>"), Is.EqualTo(("", true)));
        Assert.That(f.EndedGeneration, Is.True);
        var g = new StopStringFilter(["THE END"], ["<|end_story|>"]);
        Assert.That(g.Add("a THE END <|end_story|>"), Is.EqualTo(("a ", true)));
        Assert.That(g.EndedGeneration, Is.False, "the earlier user stop string wins");
        var h = new StopStringFilter([], ["<|end_story|>"]);
        Assert.That(h.Add("a <|en"), Is.EqualTo(("a ", false)));
        Assert.That(h.Add("ds"), Is.EqualTo(("<|ends", false)), "text that stops matching the marker is released");
    }
}
