using NUnit.Framework;
using Tessera.Tokenization;

namespace Tessera.Tests.Tokenization;

/// <summary>
/// llama.cpp's test vectors for its Llama 3 (llama-bpe) and Qwen 2 vocabularies, run against the real Llama 3 and
/// Qwen 3 tokenizer.json files (same vocabularies) fetched by tests/fetch-tokenizers.sh. Expected ids are
/// llama.cpp's, committed in Vectors/ with their provenance; none come from Tessera.
/// </summary>
[TestFixture]
public class ByteLevelBpeVectorTests
{
    private static readonly Dictionary<string, Tokenizer> Cache = [];

    private static Tokenizer Load(string name)
    {
        string dir = TokenizerTestData.FetchedTokenizer(name);
        lock (Cache)
        {
            if (!Cache.TryGetValue(name, out var t)) Cache[name] = t = Tokenizer.Load(dir);
            return t;
        }
    }

    private static IEnumerable<TokenizerTestData.Vector> Read(string vocab) => TokenizerTestData.ReadVectors(
        Path.Combine(TokenizerTestData.VectorsDir, $"ggml-vocab-{vocab}.gguf.inp"),
        Path.Combine(TokenizerTestData.VectorsDir, $"ggml-vocab-{vocab}.gguf.out"));

    public static IEnumerable<TokenizerTestData.Vector> Llama3Vectors() => Read("llama-bpe");
    public static IEnumerable<TokenizerTestData.Vector> QwenVectors() => Read("qwen2");

    [TestCaseSource(nameof(Llama3Vectors))]
    public void Llama3MatchesLlamaCpp(TokenizerTestData.Vector v) =>
        Assert.That(Load("llama3").Encode(v.Input, addBos: false), Is.EqualTo(v.Expected));

    [TestCaseSource(nameof(QwenVectors))]
    public void Qwen3MatchesLlamaCppQwen2(TokenizerTestData.Vector v) =>
        Assert.That(Load("qwen3").Encode(v.Input, addBos: false), Is.EqualTo(v.Expected));

    /// <summary>Byte-level BPE loses nothing, so llama.cpp's ids decode back to the input, except where Llama 3's
    /// clean_spaces removes a space before punctuation (as llama.cpp's detokenizer does).</summary>
    [TestCaseSource(nameof(QwenVectors))]
    public void Qwen3DecodeRoundTrips(TokenizerTestData.Vector v) =>
        Assert.That(Load("qwen3").Decode(v.Expected), Is.EqualTo(v.Input));

    [Test]
    public void Llama3SpecialTokens()
    {
        var t = Load("llama3");
        Assert.That((t.VocabSize, t.BosId, t.EosId, t.EotId, t.AddBosByDefault), Is.EqualTo((128256, (int?)128000, (int?)128001, (int?)128009, true)));
        Assert.That(t.Encode("Hello world", t.AddBosByDefault), Is.EqualTo(new[] { 128000, 9906, 1917 }));
        Assert.That(t.IsEndOfGeneration(128009) && t.IsEndOfGeneration(128001) && !t.IsEndOfGeneration(128000), Is.True);
        Assert.That(t.IsControl(128006), Is.True); // <|start_header_id|>
        var chat = t.Encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", addBos: true, parseSpecial: true);
        Assert.That(chat, Is.EqualTo(new[] { 128000, 128006, 882, 128007, 271, 13347, 128009 }));
        Assert.That(t.Decode(chat.ToArray()), Is.EqualTo("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"));
        Assert.That(t.Decode(chat.ToArray(), renderSpecial: false), Is.EqualTo("user\n\nHi"));
        Assert.That(t.Encode("<|eot_id|>", addBos: false), Has.Count.GreaterThan(1), "control text is plain text unless parseSpecial");
    }

    /// <summary>llama.cpp's clean_spaces for Llama 3: " ," and " 's" lose their space on decoding.</summary>
    [Test]
    public void Llama3DecodeCleansSpaces()
    {
        var t = Load("llama3");
        Assert.That(t.Decode(t.Encode("Hello , world . It 's", false).ToArray()), Is.EqualTo("Hello, world. It's"));
        Assert.That(t.Decode(t.Encode(" Hello world", false).ToArray()), Is.EqualTo(" Hello world"));
    }

    [Test]
    public void QwenSpecialTokens()
    {
        var t = Load("qwen3");
        Assert.That((t.BosId, t.EosId, t.AddBosByDefault), Is.EqualTo(((int?)null, (int?)151645, false)));
        Assert.That(t.EotId, Is.EqualTo(151645)); // <|im_end|>
        Assert.That(t.IsEndOfGeneration(151643) && t.IsEndOfGeneration(151645), Is.True); // <|endoftext|>, <|im_end|>
        var ids = t.Encode("<|im_start|>user\nHi<|im_end|>", addBos: false, parseSpecial: true);
        Assert.That(ids[0], Is.EqualTo(151644));
        Assert.That(ids[^1], Is.EqualTo(151645));
        // <think> is an added token not marked special: user-defined, matched even without parseSpecial
        int think = t.Encode("<think>", false).Single();
        Assert.That(t.TokenText(think), Is.EqualTo("<think>"));
        Assert.That(t.IsControl(think), Is.False);
        Assert.That(() => t.Encode("x", addBos: true), Throws.InvalidOperationException);
        // Qwen's tokenizer.json asks for NFC, which llama.cpp does not apply (nor Tessera): decomposed text stays
        // decomposed and comes back unchanged
        string decomposed = "Cu\u031Bo\u0309a Vie\u0323\u0302t";
        Assert.That(t.Decode(t.Encode(decomposed, false).ToArray()), Is.EqualTo(decomposed));
    }
}
