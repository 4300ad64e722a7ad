using System.Text.Json;
using NUnit.Framework;
using Tessera.Tokenization;

namespace Tessera.Tests.Tokenization;

/// <summary>
/// The TinyStories-656K tokenizer (2048 tokens, BOS &lt;|start_story|&gt; = 1, EOS &lt;|end_story|&gt; = 2, no byte
/// tokens) against llama.cpp's tokenization of the golden prompts (shared/golden/*/p{0,1,2}.json, BOS included).
/// </summary>
[TestFixture]
public class TinyStoriesTokenizerTests
{
    public static IEnumerable<TestCaseData> GoldenPrompts()
    {
        if (SharedData.Root == null) yield break;
        foreach (string dir in Directory.GetDirectories(SharedData.Path("golden")).Order())
            for (int i = 0; i < 3; i++)
            {
                string json = Path.Combine(dir, $"p{i}.json");
                if (!File.Exists(json)) continue;
                using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
                string prompt = doc.RootElement.GetProperty("prompt").GetString()!;
                int[] tokens = doc.RootElement.GetProperty("prompt_tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                string gguf = SharedData.Model(Path.GetFileName(dir) + ".gguf");
                yield return new TestCaseData(gguf, prompt, tokens).SetArgDisplayNames(Path.GetFileName(dir), $"p{i}");
            }
    }

    /// <summary>Every model file's embedded tokenizer gives llama.cpp's prompt tokens exactly (with BOS).</summary>
    [TestCaseSource(nameof(GoldenPrompts))]
    public void GgufMatchesLlamaCppGolden(string gguf, string prompt, int[] expected)
    {
        var t = Tokenizer.Load(gguf);
        Assert.That(t.AddBosByDefault, Is.True);
        Assert.That(t.Encode(prompt, t.AddBosByDefault), Is.EqualTo(expected));
    }

    private static Tokenizer Gguf() => Tokenizer.Load(SharedData.Model("tinystories-656k-q8_0.gguf"));

    [Test]
    public void SpecialIdsAndFlags()
    {
        var t = Gguf();
        Assert.That((t.VocabSize, t.BosId, t.EosId, t.UnknownId), Is.EqualTo((2048, (int?)1, (int?)2, (int?)0)));
        Assert.That(t.EotId, Is.Null);
        Assert.That(t.EndOfGenerationIds, Is.EquivalentTo(new[] { 2 }));
        Assert.That(t.IsControl(1) && t.IsControl(2) && !t.IsControl(80), Is.True);
        Assert.That(t.TokenText(1), Is.EqualTo("<|start_story|>"));
    }

    /// <summary>With parseSpecial the control token written in the text becomes its id, and the space prefix is
    /// added after it as llama.cpp does, so the result equals BOS + the prompt; without, it is plain text.</summary>
    [Test]
    public void ParseSpecialTurnsControlTextIntoIds()
    {
        var t = Gguf();
        int[] expected = t.Encode("Once upon a time", addBos: true).ToArray();
        Assert.That(t.Encode("<|start_story|>Once upon a time", addBos: false, parseSpecial: true), Is.EqualTo(expected));
        var plain = t.Encode("<|start_story|>Once upon a time", addBos: false);
        Assert.That(plain, Does.Not.Contain(1));
        Assert.That(t.Decode(plain.ToArray()), Is.EqualTo("<|start_story|>Once upon a time"));
    }

    /// <summary>Decoding follows llama_detokenize: the BOS piece renders as its text (or nothing), and the space
    /// prefix is stripped only from the very first piece, so after a BOS the leading space stays.</summary>
    [Test]
    public void DecodeFollowsLlamaCpp()
    {
        var t = Gguf();
        int[] ids = t.Encode("Once upon a time", addBos: true).ToArray();
        Assert.That(t.Decode(ids, renderSpecial: false), Is.EqualTo(" Once upon a time"));
        Assert.That(t.Decode(ids), Is.EqualTo("<|start_story|> Once upon a time"));
        Assert.That(t.Decode(ids.AsSpan(1)), Is.EqualTo("Once upon a time"));
        Assert.That(t.GetTokenBytes(2).Length, Is.Zero);
        Assert.That(System.Text.Encoding.UTF8.GetString(t.GetTokenBytes(2, renderSpecial: true)), Is.EqualTo("<|end_story|>"));
    }

    /// <summary>The Hugging Face tokenizer.json applies real BPE merge ranks, which llama.cpp does not do for this
    /// model: its GGUF stores every score as -1000, so llama.cpp's SentencePiece merge is leftmost-first. The two
    /// agree on p0 and p2 and differ on p1; the tokenizer.json result there is checked against
    /// Microsoft.ML.Tokenizers' BpeTokenizer given the same vocabulary and merges.</summary>
    [Test]
    public void TokenizerJsonFollowsItsMerges()
    {
        string dir = SharedData.Model("tinystories-656k");
        var json = Tokenizer.Load(dir);
        var gguf = Gguf();
        Assert.That((json.VocabSize, json.BosId, json.EosId, json.AddBosByDefault), Is.EqualTo((2048, (int?)1, (int?)2, true)));
        string[] prompts = File.ReadAllLines(SharedData.Path("golden", "prompts.txt"));
        Assert.That(json.Encode(prompts[0], true), Is.EqualTo(gguf.Encode(prompts[0], true)));
        Assert.That(json.Encode(prompts[2], true), Is.EqualTo(gguf.Encode(prompts[2], true)));
        Assert.That(json.Encode(prompts[1], true), Is.Not.EqualTo(gguf.Encode(prompts[1], true)));

        var reference = MlBpeReference(Path.Combine(dir, "tokenizer.json"));
        foreach (string p in prompts.Append("Tom and Sue saw a dog!\nIt was big.").Append("  two  spaces"))
            Assert.That(json.Encode(p, false), Is.EqualTo(reference("\u2581" + p.Replace(' ', '\u2581'))), p);
        foreach (string p in prompts)
            Assert.That(json.Decode(json.Encode(p, false).ToArray()), Is.EqualTo(p));
    }

    // Microsoft.ML.Tokenizers' BPE over the whole (already escaped) text as one word.
    private static Func<string, IReadOnlyList<int>> MlBpeReference(string tokenizerJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJson));
        var model = doc.RootElement.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
        var merges = model.GetProperty("merges").EnumerateArray().Select(m => m.GetString()!).ToList();
        var bpe = Microsoft.ML.Tokenizers.BpeTokenizer.Create(new Microsoft.ML.Tokenizers.BpeOptions(vocab)
        {
            Merges = merges,
            UnknownToken = "<unk>",
            FuseUnknownTokens = true,
            PreTokenizer = new WholeText(),
        });
        return text => bpe.EncodeToIds(text);
    }

    private sealed class WholeText : Microsoft.ML.Tokenizers.PreTokenizer
    {
        public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => [(0, text.Length)];
        public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => [(0, text.Length)];
    }
}
