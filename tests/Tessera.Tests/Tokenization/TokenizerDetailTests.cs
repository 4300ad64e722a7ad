using System.Text;
using NUnit.Framework;
using Tessera.Tokenization;

namespace Tessera.Tests.Tokenization;

/// <summary>Streaming bytes, the pre-tokenizer's handling of characters outside the BMP, and clean_spaces.</summary>
[TestFixture]
public class TokenizerDetailTests
{
    /// <summary>A character without a token falls back to one byte token per UTF-8 byte; each gives exactly its
    /// byte for streaming, and only the whole sequence decodes to the character.</summary>
    [Test]
    public void ByteFallbackTokensStreamOneByteEach()
    {
        var t = Tokenizer.Load(SharedData.Path("vocab", "ggml-vocab-llama-spm.gguf"));
        var ids = t.Encode("\U0001D11E", addBos: false); // MUSICAL SYMBOL G CLEF, not in the vocabulary
        Assert.That(ids.Skip(1).Select(t.TokenText), Is.EqualTo(new[] { "<0xF0>", "<0x9D>", "<0x84>", "<0x9E>" }));
        var sink = new List<byte>();
        foreach (int id in ids.Skip(1))
        {
            int before = sink.Count;
            t.AppendTokenBytes(id, sink);
            Assert.That(sink.Count - before, Is.EqualTo(1));
        }
        Assert.That(sink, Is.EqualTo(Encoding.UTF8.GetBytes("\U0001D11E")));
        Assert.That(t.Decode(ids.ToArray()), Is.EqualTo("\U0001D11E"));
        Assert.That(t.Decode(ids.Take(3).ToArray()), Is.EqualTo("\uFFFD"));
        Assert.That(Encoding.UTF8.GetString(t.GetTokenBytes(15043)), Is.EqualTo(" Hello")); // no stripping when streaming
    }

    [Test]
    public void OutOfRangeIdsThrow()
    {
        var t = Tokenizer.Load(SharedData.Model("tinystories-656k-q8_0.gguf"));
        Assert.That(() => t.Decode([2048]), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => t.TokenText(-1), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    /// <summary>\p{L} and friends must see a supplementary-plane character whole, as Hugging Face's and llama.cpp's
    /// regex engines do: "[^\r\n\p{L}\p{N}]?\p{L}+" takes an emoji together with the letters after it, and a letter
    /// outside the BMP (U+1D400, MATHEMATICAL BOLD CAPITAL A) is a letter.</summary>
    [Test]
    public void PreTokenizerTreatsSurrogatePairsAsOneCharacter()
    {
        var pre = new PreTokenizer("llama3", PreTokenizer.Llama3Pattern);
        Assert.That(Split(pre, "\U0001F601abc def"), Is.EqualTo(new[] { "\U0001F601abc", " def" }));
        Assert.That(Split(pre, "x\U0001D400\U0001D400 12345"), Is.EqualTo(new[] { "x\U0001D400\U0001D400", " ", "123", "45" }));
    }

    private static string[] Split(PreTokenizer pre, string text)
    {
        var words = new List<(int Start, int Length)>();
        pre.Split(text, words);
        return words.Select(w => text.Substring(w.Start, w.Length)).ToArray();
    }

    [TestCase("Hello , world !", "Hello, world!")]
    [TestCase("a ' b", "a'b")]
    [TestCase("I 'm here and you 're there , it 's", "I'm here and you're there, it's")]
    [TestCase("don 't and we 'll", "don 't and we 'll")] // llama.cpp leaves these alone
    [TestCase("", "")]
    public void CleanSpacesAsLlamaCpp(string input, string expected)
    {
        byte[] b = Encoding.UTF8.GetBytes(input);
        int n = SpaceCleaner.Clean(b);
        Assert.That(Encoding.UTF8.GetString(b, 0, n), Is.EqualTo(expected));
    }
}
