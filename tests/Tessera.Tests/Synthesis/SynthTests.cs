using NUnit.Framework;
using Tessera.Formats.Gguf;
using Tessera.Model;
using Tessera.Quantization;
using Tessera.Synthesis;
using Tessera.Tests.Cli;
using Tessera.Tests.Formats;

namespace Tessera.Tests.Synthesis;

/// <summary><c>tessera synth</c>'s engine on a tiny shape: the files open, follow the plan, load and generate; the type
/// rule agrees with llama.cpp's own quantized files; the same seed gives the same bytes.</summary>
[TestFixture]
public class SynthTests
{
    // Rows of 256 so the K-quants are really used; a vocabulary just over the TinyStories tokenizer's 2048 so it is padded.
    private static readonly ModelShape Tiny = new()
    {
        Name = "tiny", Dim = 256, Layers = 2, Heads = 4, KvHeads = 2, Ffn = 256, Vocab = 2080, Context = 128,
    };

    private static readonly SynthType[] AllTypes = Enum.GetValues<SynthType>();

    private static GgufFile Tokenizer() => GgufFile.Open(SharedData.Model("tinystories-656k-q8_0.gguf"));

    private static byte[] Bytes(ModelShape shape, SynthType type, ulong seed)
    {
        using var tok = Tokenizer();
        using var ms = new MemoryStream();
        new ModelSynthesizer(shape, type, seed).CreateWriter(tok).WriteTo(ms);
        return ms.ToArray();
    }

    [Test]
    public void TinyModelOpensLoadsAndGenerates([ValueSource(nameof(AllTypes))] SynthType type)
    {
        using var dir = new TempDirectory();
        string path = dir.File("tiny.gguf");
        var synth = new ModelSynthesizer(Tiny, type, seed: 7);
        long reported = 0;
        using (var tok = Tokenizer()) synth.WriteFile(path, tok, (done, total) => reported = done);
        Assert.That(reported, Is.EqualTo(synth.DataBytes), "progress reaches the total");

        using (var f = GgufFile.Open(path))
        {
            Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(synth.Tensors.Select(t => t.Name)));
            foreach (var (t, plan) in f.Tensors.Zip(synth.Tensors))
            {
                Assert.That(t.Type, Is.EqualTo(plan.Type), t.Name);
                Assert.That(t.Dimensions, Is.EqualTo(plan.Dims), t.Name);
                Assert.That(t.ByteSize, Is.EqualTo(GgmlTypeInfo.RowBytes(t.Type, t.RowLength) * t.RowCount), t.Name);
            }
            var expectedMatrixType = type switch
            {
                SynthType.F32 => GgmlType.F32, SynthType.F16 => GgmlType.F16, SynthType.BF16 => GgmlType.BF16, SynthType.Q8_0 => GgmlType.Q8_0,
                SynthType.Q4_0 => GgmlType.Q4_0, _ => GgmlType.Q4_K,
            };
            Assert.That(f.GetTensor("blk.0.attn_q.weight").Type, Is.EqualTo(expectedMatrixType));
            Assert.That(f.GetTensor("blk.1.ffn_norm.weight").Type, Is.EqualTo(GgmlType.F32));
            Assert.That(f.GetTensor("blk.1.ffn_norm.weight").Span.ToArray().Chunk(4).Select(b => BitConverter.ToSingle(b)), Is.All.EqualTo(1f));

            Assert.That(f.GetString("general.architecture"), Is.EqualTo("llama"));
            Assert.That(f.GetUInt32("general.file_type"), Is.EqualTo(SynthTypes.FileType(type)));
            Assert.That(f.GetUInt32("llama.embedding_length"), Is.EqualTo(256));
            Assert.That(f.GetUInt32("llama.block_count"), Is.EqualTo(2));
            Assert.That(f.GetUInt32("llama.feed_forward_length"), Is.EqualTo(256));
            Assert.That(f.GetUInt32("llama.attention.head_count"), Is.EqualTo(4));
            Assert.That(f.GetUInt32("llama.attention.head_count_kv"), Is.EqualTo(2));
            Assert.That(f.GetUInt32("llama.context_length"), Is.EqualTo(128));
            Assert.That(f.GetUInt32("llama.vocab_size"), Is.EqualTo(2080));
            Assert.That(f.GetUInt32("llama.rope.dimension_count"), Is.EqualTo(64));
            Assert.That(f.TryGetFloat("llama.rope.freq_base", out float theta) && theta == 10000f);
            Assert.That(f.TryGetFloat("llama.attention.layer_norm_rms_epsilon", out float eps) && eps == 1e-5f);
            Assert.That(f.GetString("general.name"), Does.Contain("tiny"));
        }

        using var m = LoadedModel.Load(path);
        Assert.That(m.Config.VocabSize, Is.EqualTo(2080));
        using var state = m.Model.CreateState(32);
        int[] prompt = [.. m.Tokenizer.Encode("Once upon a time", true)];
        var logits = new float[prompt.Length * 2080];
        m.Model.Forward(state, prompt, logits);
        Assert.That(logits.All(float.IsFinite), "prompt logits are finite");
        Assert.That(logits.Max() - logits.Min(), Is.GreaterThan(0), "logits depend on the token");
        int next = Array.IndexOf(state.Logits, state.Logits.Max());
        for (int i = 0; i < 4; i++)
        {
            m.Model.Forward(state, [next]);
            Assert.That(state.Logits.All(float.IsFinite), $"logits after generated token {i}");
            next = Array.IndexOf(state.Logits, state.Logits.Max());
        }
    }

    [Test]
    public void TokenizerIsTheSourcesPaddedWithUnusedTokens()
    {
        using var tok = Tokenizer();
        var keys = ModelSynthesizer.PaddedTokenizer(tok, 2080).ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.That(keys.Keys, Is.EquivalentTo(tok.Metadata.Keys.Where(k => k.StartsWith("tokenizer.ggml.", StringComparison.Ordinal))));
        var tokens = (string[])keys["tokenizer.ggml.tokens"].Value;
        var scores = (float[])keys["tokenizer.ggml.scores"].Value;
        var types = (int[])keys["tokenizer.ggml.token_type"].Value;
        Assert.That(tokens, Has.Length.EqualTo(2080));
        Assert.That(tokens.Take(2048), Is.EqualTo(tok.GetStringArray("tokenizer.ggml.tokens")));
        Assert.That(tokens[2048], Is.EqualTo("<pad_2048>"));
        Assert.That(tokens[2079], Is.EqualTo("<pad_2079>"));
        Assert.That(scores.Skip(2048), Is.All.EqualTo(0f));
        Assert.That(types.Skip(2048), Is.All.EqualTo(5), "token type 5 = unused");
        Assert.That(tok.TryGetInt32Array("tokenizer.ggml.token_type", out int[] srcTypes) && types.Take(2048).SequenceEqual(srcTypes));
        Assert.That(keys["tokenizer.ggml.bos_token_id"].Value, Is.EqualTo(tok.Metadata["tokenizer.ggml.bos_token_id"].Value));
    }

    [Test]
    public void VocabularySmallerThanTheTokenizerIsRejected()
    {
        using var tok = Tokenizer();
        var small = Tiny with { Vocab = 1000 };
        var e = Assert.Throws<ArgumentException>(() => new ModelSynthesizer(small, SynthType.Q8_0, 1).CreateWriter(tok));
        Assert.That(e!.Message, Does.Contain("2048 tokens").And.Contain("1000"));
    }

    [Test]
    public void SameSeedSameBytes_OtherSeedOtherWeights()
    {
        byte[] a = Bytes(Tiny, SynthType.Q8_0, 42), b = Bytes(Tiny, SynthType.Q8_0, 42), c = Bytes(Tiny, SynthType.Q8_0, 43);
        Assert.That(b, Is.EqualTo(a));
        Assert.That(c, Has.Length.EqualTo(a.Length));
        Assert.That(c, Is.Not.EqualTo(a));
    }

    /// <summary>The weights are normal(0, 0.02): checked on an F16 file's matrices (over 1.5M values, so the sample
    /// moments are within 1% of the true ones by a wide margin), rows differ from each other, and there are no
    /// NaNs or denormals.</summary>
    [Test]
    public void WeightsAreNormalWithStd002()
    {
        using var dir = new TempDirectory();
        string path = dir.File("f16.gguf");
        using (var tok = Tokenizer()) new ModelSynthesizer(Tiny, SynthType.F16, 3).WriteFile(path, tok);
        using var f = GgufFile.Open(path);
        double n = 0, sum = 0, sum2 = 0, sum4 = 0;
        foreach (var t in f.Tensors.Where(t => t.Type == GgmlType.F16))
        {
            var y = new float[t.ElementCount];
            Dequantizer.DequantizeRow(t.Type, t.Span, y);
            Assert.That(y.All(v => float.IsFinite(v) && (v == 0 || float.IsNormal(v) || Math.Abs(v) < 6e-5f)), t.Name);
            Assert.That(y.AsSpan(0, (int)t.RowLength).SequenceEqual(y.AsSpan((int)t.RowLength, (int)t.RowLength)), Is.False, $"{t.Name}: rows 0 and 1 differ");
            foreach (float v in y) { n++; sum += v; sum2 += (double)v * v; sum4 += Math.Pow(v, 4); }
        }
        double mean = sum / n, var = sum2 / n - mean * mean;
        Assert.That(n, Is.GreaterThan(1_500_000));
        Assert.That(Math.Abs(mean), Is.LessThan(0.02 * 5 / Math.Sqrt(n)), "mean within 5 standard errors of 0");
        Assert.That(Math.Sqrt(var), Is.EqualTo(0.02).Within(1).Percent);
        Assert.That(sum4 / n / (var * var), Is.EqualTo(3.0).Within(2).Percent, "kurtosis of a normal distribution");
    }

    /// <summary>The per-tensor types follow llama.cpp's rules: compared with the types in files llama.cpp's quantizer
    /// wrote, for a shape with a separate output (rand-llama-d256, 4 layers: Q6_K in layers 2 and 3) and a tied one
    /// with 128-wide rows (TinyStories: K-quants fall back to Q5_0 / Q8_0).</summary>
    [TestCase("rand-llama-d256-q4_k_m.gguf", SynthType.Q4_K_M)]
    [TestCase("rand-llama-d256-q4_0.gguf", SynthType.Q4_0)]
    [TestCase("rand-llama-d256-q8_0.gguf", SynthType.Q8_0)]
    [TestCase("rand-llama-d256-f16.gguf", SynthType.F16)]
    [TestCase("rand-llama-d256-bf16.gguf", SynthType.BF16)]
    [TestCase("tinystories-656k-q4_k_m.gguf", SynthType.Q4_K_M)]
    [TestCase("tinystories-656k-q4_0.gguf", SynthType.Q4_0)]
    [TestCase("tinystories-656k-q8_0.gguf", SynthType.Q8_0)]
    public void TensorTypesMatchLlamaCpp(string file, SynthType type)
    {
        using var f = GgufFile.Open(SharedData.Model(file));
        var shape = new ModelShape
        {
            Name = file,
            Dim = (int)f.GetUInt32("llama.embedding_length"),
            Layers = (int)f.GetUInt32("llama.block_count"),
            Heads = (int)f.GetUInt32("llama.attention.head_count"),
            KvHeads = (int)f.GetUInt32("llama.attention.head_count_kv"),
            Ffn = (int)f.GetUInt32("llama.feed_forward_length"),
            Vocab = f.GetStringArray("tokenizer.ggml.tokens").Length,
            Tied = f.FindTensor("output.weight") == null,
        };
        var plan = new ModelSynthesizer(shape, type, 1).Tensors;
        Assert.That(plan.Select(t => t.Name), Is.EquivalentTo(f.Tensors.Select(t => t.Name)));
        foreach (var t in plan)
        {
            var theirs = f.GetTensor(t.Name);
            Assert.That(t.Type, Is.EqualTo(theirs.Type), t.Name);
            Assert.That(t.Dims, Is.EqualTo(theirs.Dimensions), t.Name);
        }
        Assert.That(SynthTypes.FileType(type), Is.EqualTo(f.GetUInt32("general.file_type")));
    }

    [Test]
    public void CatalogHasTheIssuesShapes()
    {
        Assert.That(ShapeCatalog.All.Keys, Is.SupersetOf(new[] { "stories110m", "smollm2-135m", "llama-3.2-1b", "qwen2.5-0.5b", "llama-2-7b" }));
        var s = ShapeCatalog.Get("stories110m");
        Assert.That((s.Dim, s.Layers, s.Heads, s.Ffn, s.Vocab), Is.EqualTo((768, 12, 12, 2048, 32000)));
        var l = ShapeCatalog.Get("llama-3.2-1b");
        Assert.That((l.Dim, l.Layers, l.Heads, l.KvHeads, l.Ffn, l.Vocab), Is.EqualTo((2048, 16, 32, 8, 8192, 128256)));
        var b = ShapeCatalog.Get("llama-2-7b");
        Assert.That((b.Dim, b.Layers, b.Heads, b.Ffn, b.Vocab), Is.EqualTo((4096, 32, 32, 11008, 32000)));
        // The issue's sizes: 134M for stories110m, 1.5B for Llama-3.2-1B with a separate output, 6.7B for Llama 2 7B.
        Assert.That(s.ParameterCount / 1e6, Is.EqualTo(134).Within(0.5));
        Assert.That(l.ParameterCount / 1e9, Is.EqualTo(1.5).Within(0.01));
        Assert.That(b.ParameterCount / 1e9, Is.EqualTo(6.74).Within(0.01));
        Assert.Throws<ArgumentException>(() => ShapeCatalog.Get("gpt-5"));
    }

    [Test]
    public void BadShapesAndTypesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new ModelSynthesizer(Tiny with { Heads = 3 }, SynthType.F16, 1));
        Assert.Throws<ArgumentException>(() => new ModelSynthesizer(Tiny with { Ffn = 100 }, SynthType.F16, 1));
        Assert.Throws<ArgumentException>(() => new ModelSynthesizer(Tiny with { KvHeads = 3 }, SynthType.F16, 1));
        Assert.That(SynthTypes.Parse("q4_k_m"), Is.EqualTo(SynthType.Q4_K_M));
        Assert.That(SynthTypes.Parse("BF16"), Is.EqualTo(SynthType.BF16));
        Assert.Throws<ArgumentException>(() => SynthTypes.Parse("q2_k"));
        Assert.Throws<ArgumentException>(() => SynthTypes.Parse("3"));
    }

    [Test]
    public void CliReportsBadOptionsOnOneLine()
    {
        var r = CliRunner.Run("synth", "--shape", "nope", "--type", "q8_0", "--output", "/tmp/x.gguf");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Err, Does.StartWith("error: --shape nope: unknown shape"));
        r = CliRunner.Run("synth", "--shape", "stories110m", "--type", "q3_k", "--output", "/tmp/x.gguf");
        Assert.That(r.Err, Does.StartWith("error: --type q3_k: unknown type"));
        r = CliRunner.Run("synth", "--shape", "stories110m", "--type", "q8_0", "--output", "/nonexistent-dir/x.gguf");
        Assert.That(r.Err, Does.StartWith("error: --output /nonexistent-dir/x.gguf: folder"));
        r = CliRunner.Run("synth", "--shape", "stories110m", "--type", "q8_0", "--output", "/tmp/x.gguf", "--tokenizer-from", "/nonexistent.gguf");
        Assert.That(r.Err, Does.StartWith("error: --tokenizer-from /nonexistent.gguf: no such file"));
    }
}
