using NUnit.Framework;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Generation;

/// <summary>Token healing on TinyStories: "Once upon a ti" is continued as "me", on every entry point.</summary>
public class TokenHealingTests
{
    private const string File = "tinystories-656k-q8_0.gguf";

    internal static string Library(string prompt, bool heal)
    {
        var m = ModelCache.Get(File);
        using var state = m.Model.CreateState(128);
        var o = new GenerationOptions { MaxTokens = 8, Sampling = SamplingOptions.Greedy, TokenHealing = heal };
        return string.Concat(new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode(prompt, true), o).Select(t => t.Text));
    }

    [Test]
    public void BacksUpAsManyTokensAsALongerTokenCouldSpan()
    {
        var tok = ModelCache.Get(File).Tokenizer;
        var ids = tok.Encode("Once upon a ti", true);
        var (healed, removed) = TokenHealing.Heal(tok, ids);
        // TinyStories writes "upon a time, " as one token, so "upon a " and "ti" both go back.
        Assert.That(removed, Is.EqualTo("upon a ti"));
        Assert.That(healed, Is.EqualTo(ids.Take(ids.Count - 2)));
        var one = tok.Encode("x", true);
        var (kept, _) = TokenHealing.Heal(tok, one);
        Assert.That(kept, Is.Not.Empty, "never back over BOS");
        Assert.That(kept[0], Is.EqualTo(one[0]));
        var bosOnly = tok.Encode("", true);
        Assert.That(TokenHealing.Heal(tok, bosOnly).Prompt, Is.EqualTo(bosOnly));
    }

    [Test]
    public void OnceUponATiIsContinuedAsTime()
    {
        string plain = Library("Once upon a ti", heal: false), healed = Library("Once upon a ti", heal: true);
        Assert.That(plain, Does.Not.StartWith("me"), "without healing the model does not see the word");
        Assert.That(healed, Does.StartWith("me"), "healed: " + healed);
        Assert.That("Once upon a ti" + healed, Does.StartWith("Once upon a time"), "the taken-back text is not repeated");
    }

    [Test]
    public async Task TheSchedulerHealsAsTheLibraryDoes()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 256 });
        var o = new GenerationOptions { MaxTokens = 8, Sampling = SamplingOptions.Greedy, TokenHealing = true };
        foreach (string prompt in new[] { "Once upon a ti", "Lily wanted to pl", "Tom and his fri" })
        {
            var r = await e.CompleteAsync(prompt, o);
            Assert.That(r.Text, Is.EqualTo(Library(prompt, heal: true)), prompt);
            Assert.That(r.PromptTokens, Is.EqualTo(e.CountTokens(prompt)), "usage counts the prompt as given");
        }
    }
}
