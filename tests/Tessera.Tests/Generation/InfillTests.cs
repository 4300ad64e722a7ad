using System.Text.Json;
using NUnit.Framework;
using Tessera.Api;
using Tessera.Formats.Gguf;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Synthesis;
using Tessera.Tests.Cli;
using Tessera.Tests.Tokenization;
using Tessera.Tokenization;

namespace Tessera.Tests.Generation;

/// <summary>
/// <c>suffix</c> (fill in the middle): the markers are found as llama.cpp finds them (the file's keys, else their
/// texts), the prompt is laid out prefix-suffix-middle, and a model without markers is refused by name on every entry
/// point. No FIM-trained model is at hand, so what the model writes in the middle is not judged here; a random-weight
/// model with markers named in its file checks the plumbing.
/// </summary>
public class InfillTests
{
    [Test]
    public void QwensMarkersAreFoundByTheirTextAndThePromptIsPrefixSuffixMiddle()
    {
        var t = Tokenizer.Load(TokenizerTestData.FetchedTokenizer("qwen3"));
        Assert.That(t.CanInfill, Is.True);
        Assert.That(t.Decode([t.FimPrefixId!.Value, t.FimSuffixId!.Value, t.FimMiddleId!.Value], renderSpecial: true), Is.EqualTo("<|fim_prefix|><|fim_suffix|><|fim_middle|>"));
        var ids = t.EncodeInfill("def add(a, b):\n    return ", "\n\nprint(add(1, 2))");
        var want = new List<int>();
        if (t.AddBosByDefault) want.Add(t.BosId!.Value);
        want.Add(t.FimPrefixId!.Value);
        want.AddRange(t.Encode("def add(a, b):\n    return ", false));
        want.Add(t.FimSuffixId!.Value);
        want.AddRange(t.Encode("\n\nprint(add(1, 2))", false));
        want.Add(t.FimMiddleId!.Value);
        Assert.That(ids, Is.EqualTo(want));
    }

    [Test]
    public void AVocabularyWithoutMarkersIsRefusedNamingTheKeys()
    {
        var m = Golden.ModelCache.Get("tinystories-656k-q8_0.gguf");
        Assert.That(m.Tokenizer.CanInfill, Is.False);
        var e = Assert.Throws<NotSupportedException>(() => m.Tokenizer.EncodeInfill("a", "b"))!;
        Assert.That(e.Message, Does.Contain("tinystories").And.Contain("fim_pre_token_id"));
        var cli = CliRunner.Run("generate", "-m", SharedData.Model("tinystories-656k-q8_0.gguf"), "-p", "Once", "--suffix", "The end.");
        Assert.That(cli.ExitCode, Is.Not.EqualTo(0));
        Assert.That(cli.Err, Does.Contain("fill-in-the-middle"));
    }

    /// <summary>The Llama 2 vocabulary in a tiny random model whose file names three of its tokens as the markers.</summary>
    private static readonly Lazy<string> FimModel = new(() =>
    {
        string path = Path.Combine(Path.GetTempPath(), $"tessera-fim-tiny-{Environment.ProcessId}.gguf");
        var shape = new ModelShape { Name = "fim-tiny", Dim = 64, Layers = 2, Heads = 2, KvHeads = 2, Ffn = 128, Vocab = 32000, Context = 512 };
        using var tok = GgufFile.Open(SharedData.Path("vocab", "ggml-vocab-llama-spm.gguf"));
        var w = new ModelSynthesizer(shape, SynthType.Q8_0, seed: 5).CreateWriter(tok);
        w.Set("tokenizer.ggml.fim_pre_token_id", GgufValue.Of(31000u));
        w.Set("tokenizer.ggml.fim_suf_token_id", GgufValue.Of(31001u));
        w.Set("tokenizer.ggml.fim_mid_token_id", GgufValue.Of(31002u));
        w.WriteFile(path);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { File.Delete(path); } catch (IOException) { } };
        return path;
    });

    [Test]
    public async Task TheFilesMarkersFrameThePromptInTheLibraryAndTheCli()
    {
        using var e = await InferenceEngine.LoadAsync(FimModel.Value, new EngineOptions { ContextSize = 256, MaxSequences = 2 });
        var t = e.Loaded.Tokenizer;
        Assert.That((t.FimPrefixId, t.FimSuffixId, t.FimMiddleId), Is.EqualTo(((int?)31000, (int?)31001, (int?)31002)));
        var o = new GenerationOptions { MaxTokens = 6, Sampling = SamplingOptions.Greedy, Suffix = " world", StopAtEndOfGeneration = false };
        var prompt = e.PromptTokens("Hello", o);
        int[] framed = [1, 31000, .. t.Encode("Hello", false), 31001, .. t.Encode(" world", false), 31002];
        Assert.That(prompt, Is.EqualTo(framed));
        var r = await e.CompleteAsync("Hello", o);
        Assert.That(r.PromptTokens, Is.EqualTo(prompt.Count));
        // The middle is the greedy continuation of exactly that prompt.
        var m = e.Loaded;
        using var state = m.Model.CreateState(256);
        var want = new TextGenerator(m.Model, m.Tokenizer).Generate(state, prompt, o with { Suffix = null }).Where(g => g.Token >= 0).Select(g => g.Token);
        Assert.That(r.TokenIds, Is.EqualTo(want));
        state.Rewind(0);
        Assert.That(Assert.Throws<ArgumentException>(() => new TextGenerator(m.Model, m.Tokenizer).Generate(state, prompt, o).ToList())!.Message,
            Does.Contain("EncodeInfill"), "TextGenerator takes tokens: a suffix there would be ignored, so it is refused");
        var cli = CliRunner.Run("generate", "-m", FimModel.Value, "-p", "Hello", "--suffix", " world", "-n", "6", "--temp", "0", "--ignore-eos", "--json");
        Assert.That(cli.ExitCode, Is.EqualTo(0), cli.Err);
        using var doc = JsonDocument.Parse(cli.Out);
        Assert.That(doc.RootElement.GetProperty("prompt_tokens").EnumerateArray().Select(x => x.GetInt32()), Is.EqualTo(prompt));
        Assert.That(doc.RootElement.GetProperty("tokens").EnumerateArray().Select(x => x.GetInt32()), Is.EqualTo(r.TokenIds));
        Assert.That(Assert.Throws<ArgumentException>(() => (o with { TokenHealing = true }).Validate())!.Message, Does.Contain("suffix with token healing"));
        Assert.That(Assert.Throws<ArgumentException>(() => e.GenerateAsync([new Tessera.Chat.ChatMessage("user", "hi")], o))!.Message, Does.Contain("a chat has no fill-in-the-middle"));
    }
}
