using NUnit.Framework;
using Tessera.Evaluation;
using Tessera.Generation;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Generation;

/// <summary>Generation and evaluation on the real TinyStories model.</summary>
public class ModelGenerationTests
{
    private static string Story => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "story.txt"));

    private static (List<int> Tokens, string Text, GenerationStats Stats) Run(LoadedModel m, string prompt, GenerationOptions o)
    {
        using var state = m.Model.CreateState(256);
        var stats = new GenerationStats();
        var ids = new List<int>();
        var text = new System.Text.StringBuilder();
        foreach (var step in new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode(prompt, true), o, stats))
        {
            if (step.Token >= 0) ids.Add(step.Token);
            text.Append(step.Text);
        }
        return (ids, text.ToString(), stats);
    }

    [Test]
    public void SameSeedSameText_OtherSeedOtherText()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        GenerationOptions O(ulong seed) => new() { MaxTokens = 40, StopAtEndOfGeneration = false, Sampling = new SamplingOptions { Temperature = 1.0f, Seed = seed } };
        var a = Run(m, "Once upon a time", O(1));
        var b = Run(m, "Once upon a time", O(1));
        var c = Run(m, "Once upon a time", O(2));
        Assert.That(b.Tokens, Is.EqualTo(a.Tokens));
        Assert.That(c.Tokens, Is.Not.EqualTo(a.Tokens));
    }

    [Test]
    public void StreamedTextIsTheDetokenizedTokens()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        var r = Run(m, "Lily and Ben", new GenerationOptions { MaxTokens = 60, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy });
        // The first generated token may carry the word-initial space that Decode strips at the start of a text.
        string decoded = m.Tokenizer.Decode(r.Tokens.ToArray());
        Assert.That(r.Text.TrimStart(), Is.EqualTo(decoded.TrimStart()));
    }

    [Test]
    public void MaxTokensAndStopStringsEndGeneration()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        var greedy = SamplingOptions.Greedy;
        var full = Run(m, "Once upon a time", new GenerationOptions { MaxTokens = 48, Sampling = greedy, StopAtEndOfGeneration = false });
        Assert.That(full.Tokens, Has.Count.EqualTo(48));
        Assert.That(full.Stats.FinishReason, Is.EqualTo(FinishReason.MaxTokens));
        // golden greedy text: ", a little girl named Lily lived in a small house ..."
        Assert.That(full.Text, Does.Contain("Lily"));
        var stopped = Run(m, "Once upon a time", new GenerationOptions { MaxTokens = 48, Sampling = greedy, StopStrings = ["Lily"] });
        Assert.That(stopped.Stats.FinishReason, Is.EqualTo(FinishReason.StopString));
        Assert.That(stopped.Text, Is.EqualTo(full.Text[..full.Text.IndexOf("Lily", StringComparison.Ordinal)]));
    }

    [Test]
    public void GenerationStopsAtEndOfStory()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        var r = Run(m, "Once upon a time", new GenerationOptions { MaxTokens = 400, Sampling = SamplingOptions.Greedy });
        Assert.That(r.Stats.FinishReason, Is.EqualTo(FinishReason.EndOfGeneration), "TinyStories ends its stories with <|end_story|>");
        Assert.That(r.Tokens.Count, Is.LessThan(400));
    }

    [Test]
    public void EmptyPromptAndPromptOverTheContextAreRejected()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        var gen = new TextGenerator(m.Model, m.Tokenizer);
        using var small = m.Model.CreateState(8);
        var e1 = Assert.Throws<ArgumentException>(() => gen.Generate(small, [], new GenerationOptions()).ToList())!;
        Assert.That(e1.Message, Does.Contain("empty"));
        var e2 = Assert.Throws<ArgumentException>(() => gen.Generate(small, Enumerable.Repeat(5, 9).ToList(), new GenerationOptions()).ToList())!;
        Assert.That(e2.Message, Does.Contain("context"));
    }

    [Test]
    public void BatchedPrefillEqualsTokenByToken()
    {
        // The prompt in one batch and the prompt one token at a time must give the same cache and logits.
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        int[] tokens = m.Tokenizer.Encode("Lily and Ben went to the park. They saw a big", true).ToArray();
        using var a = m.Model.CreateState(64);
        m.Model.Forward(a, tokens);
        using var b = m.Model.CreateState(64, maxBatch: 3);
        foreach (int t in tokens) m.Model.Forward(b, [t]);
        Assert.That(GoldenCase.Nmse(b.Logits, a.Logits), Is.LessThan(1e-10));
    }

    private static readonly string[] TinyStoriesFiles =
        ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k_m", "q6_k"];

    [Test]
    public void PerplexityOfEveryTinyStoriesFile()
    {
        var results = new Dictionary<string, double>();
        foreach (var t in TinyStoriesFiles)
        {
            var m = ModelCache.Get($"tinystories-656k-{t}.gguf");
            results[t] = Perplexity.Compute(m, Story, context: 128).Value;
            TestContext.Out.WriteLine($"{t}: PPL {results[t]:F4}");
        }
        double f32 = results["f32"];
        // The same words in random order must be far less likely than the story: catches scoring the wrong target.
        var rng = new Random(5);
        string shuffled = string.Join(' ', Story.Split(' ').OrderBy(_ => rng.Next()));
        double shuffledPpl = Perplexity.Compute(ModelCache.Get("tinystories-656k-f32.gguf"), shuffled, context: 128).Value;
        TestContext.Out.WriteLine($"shuffled words: PPL {shuffledPpl:F4}");
        Assert.That(f32, Is.LessThan(shuffledPpl / 2));
        // F16 and BF16 differ from F32 only by weight rounding: within 1% (the bound).
        foreach (var t in new[] { "f16", "bf16", "q8_0" })
            Assert.That(Math.Abs(results[t] / f32 - 1), Is.LessThan(0.01), $"{t} perplexity {results[t]:F4} vs F32 {f32:F4}");
        // 4- and 5-bit files lose some accuracy but must stay close (within 10%).
        foreach (var t in TinyStoriesFiles.Skip(4))
            Assert.That(Math.Abs(results[t] / f32 - 1), Is.LessThan(0.10), $"{t} perplexity {results[t]:F4} vs F32 {f32:F4}");
    }

    [Test]
    public void PerplexityNeedsTwoChunks()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        var e = Assert.Throws<ArgumentException>(() => Perplexity.Compute(m, "Once upon a time", 128))!;
        Assert.That(e.Message, Does.Contain("needs at least 256"));
    }
}
