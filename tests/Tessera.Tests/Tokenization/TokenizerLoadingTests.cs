using System.Text;
using NUnit.Framework;
using Tessera.Formats;
using Tessera.Tokenization;

namespace Tessera.Tests.Tokenization;

/// <summary><see cref="Tokenizer.Load"/>: which files it accepts, and the errors for the ones it does not.</summary>
[TestFixture]
public class TokenizerLoadingTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "tessera-tok-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void LoadsEveryKindOfSource()
    {
        Assert.That(Tokenizer.Load(SharedData.Model("tinystories-656k")).VocabSize, Is.EqualTo(2048));                  // dir with tokenizer.json
        Assert.That(Tokenizer.Load(SharedData.Model("tinystories-656k/tokenizer.json")).VocabSize, Is.EqualTo(2048));
        Assert.That(Tokenizer.Load(SharedData.Model("llama2-tokenizer")).VocabSize, Is.EqualTo(32000));                   // dir with tokenizer.model
        Assert.That(Tokenizer.Load(SharedData.Path("vocab", "ggml-vocab-llama-spm.gguf")).VocabSize, Is.EqualTo(32000));  // vocab-only GGUF
        Assert.That(Tokenizer.Load(SharedData.Model("rand-llama-d256-q4_k_m.gguf")).VocabSize, Is.EqualTo(2048));        // full model
    }

    [Test]
    public void MissingFileNamesThePath()
    {
        string path = Path.Combine(_dir, "model.gguf");
        var e = Assert.Throws<ModelFormatException>(() => Tokenizer.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("not found"));
    }

    [Test]
    public void DirectoryWithoutTokenizer()
    {
        var e = Assert.Throws<ModelFormatException>(() => Tokenizer.Load(_dir))!;
        Assert.That(e.Message, Does.Contain(_dir).And.Contain("neither tokenizer.json nor tokenizer.model"));
    }

    [Test]
    public void GgufWithoutTokenizer()
    {
        string path = WriteGguf(("general.architecture", "llama"));
        var e = Assert.Throws<ModelFormatException>(() => Tokenizer.Load(path))!;
        Assert.That(e.Message, Is.EqualTo($"{path}: no tokenizer: the file has no tokenizer.ggml.model key"));
    }

    [Test]
    public void UnknownTokenizerModelIsNamed()
    {
        string path = WriteGguf(("tokenizer.ggml.model", "bert"), ("tokenizer.ggml.tokens", new[] { "a", "b" }));
        var e = Assert.Throws<ModelFormatException>(() => Tokenizer.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("tokenizer.ggml.model = 'bert'"));
    }

    [Test]
    public void UnknownPreTokenizerIsNamed()
    {
        string path = WriteGguf(("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "martian"),
            ("tokenizer.ggml.tokens", new[] { "a", "b" }), ("tokenizer.ggml.merges", new[] { "a b" }));
        var e = Assert.Throws<ModelFormatException>(() => Tokenizer.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("tokenizer.ggml.pre = 'martian'"));
    }

    [Test]
    public void GgufBpeWithoutMerges()
    {
        string path = WriteGguf(("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "qwen2"), ("tokenizer.ggml.tokens", new[] { "a", "b" }));
        var e = Assert.Throws<ModelFormatException>(() => Tokenizer.Load(path))!;
        Assert.That(e.Message, Does.Contain("no tokenizer.ggml.merges key"));
    }

    /// <summary>A minimal byte-level BPE GGUF built here: 'qwen2' pre-tokenizer, two merges.</summary>
    [Test]
    public void GgufByteLevelBpe()
    {
        string[] tokens = ["a", "b", "ab", "Ġ", "Ġab", "<|endoftext|>"];
        string path = WriteGguf(("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "qwen2"), ("tokenizer.ggml.tokens", tokens),
            ("tokenizer.ggml.merges", new[] { "a b", "Ġ ab" }), ("tokenizer.ggml.token_type", new[] { 1, 1, 1, 1, 1, 3 }));
        var t = Tokenizer.Load(path);
        Assert.That(t.Encode("ab ab", false), Is.EqualTo(new[] { 2, 4 }));
        Assert.That(t.Decode([2, 4]), Is.EqualTo("ab ab"));
        Assert.That(t.IsEndOfGeneration(5) && t.EotId == 5 && t.BosId == null, Is.True);
    }

    [Test]
    public void UnsupportedTokenizerJsonModelIsNamed()
    {
        string path = Path.Combine(_dir, "tokenizer.json");
        File.WriteAllText(path, """{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}""");
        var e = Assert.Throws<ModelFormatException>(() => Tokenizer.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("model type 'Unigram'"));
    }

    [Test]
    public void NotATokenizerFile()
    {
        string path = Path.Combine(_dir, "notes.txt");
        File.WriteAllText(path, "hello");
        Assert.That(() => Tokenizer.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains(path));
        string model = Path.Combine(_dir, "tokenizer.model");
        File.WriteAllBytes(model, [0xFF, 0xFF, 0xFF]);
        Assert.That(() => Tokenizer.Load(model), Throws.TypeOf<ModelFormatException>().With.Message.Contains(model));
    }

    // GGUF v3 with the given metadata (string, string[] or int[] values) and no tensors.
    private string WriteGguf(params (string Key, object Value)[] kvs)
    {
        string path = Path.Combine(_dir, $"t{Guid.NewGuid():N}.gguf");
        using var w = new BinaryWriter(File.Create(path));
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write(0UL);
        w.Write((ulong)kvs.Length);
        foreach (var (key, value) in kvs)
        {
            Str(key);
            switch (value)
            {
                case string s: w.Write(8u); Str(s); break;
                case string[] a: w.Write(9u); w.Write(8u); w.Write((ulong)a.Length); foreach (var s in a) Str(s); break;
                case int[] a: w.Write(9u); w.Write(5u); w.Write((ulong)a.Length); foreach (int x in a) w.Write(x); break;
                default: throw new ArgumentException(value.GetType().Name);
            }
        }
        return path;

        void Str(string s)
        {
            byte[] b = Encoding.UTF8.GetBytes(s);
            w.Write((ulong)b.Length);
            w.Write(b);
        }
    }
}
