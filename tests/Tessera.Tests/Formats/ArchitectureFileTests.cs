using NUnit.Framework;
using Tessera.Backends;
using Tessera.Formats;
using Tessera.Formats.Gguf;
using Tessera.Model;
using Tessera.Synthesis;

namespace Tessera.Tests.Formats;

/// <summary>
/// What the new families' metadata means (llama.cpp's rules for keys a file may leave out), and bad input: files of a
/// known family that lack a tensor of that family, carry it misshaped, or name an architecture or a window
/// pattern Tessera does not run: one <see cref="ModelFormatException"/> naming the file, the architecture and the
/// problem, never a silent fall back to Llama semantics. The files are a small Gemma 3 / Qwen2 written by synth and
/// copied with one edit.
/// </summary>
[TestFixture]
public class ArchitectureFileTests
{
    private TempDirectory _dir = null!;

    [SetUp]
    public void SetUp() => _dir = new TempDirectory();

    [TearDown]
    public void TearDown() => _dir.Dispose();

    // The shape written by synth, then copied with the edits: metadata set or removed, tensors dropped or replaced.
    private string Edited(string shape, Action<GgufWriter> edit, Func<GgufTensor, bool>? keep = null)
    {
        string good = Path.Combine(_dir.Path, shape + ".gguf");
        if (!File.Exists(good))
            using (var tok = GgufFile.Open(SharedData.Model("tinystories-656k-f32.gguf")))
                new ModelSynthesizer(ShapeCatalog.Get(shape), SynthType.F32, seed: 1).WriteFile(good, tok);
        string path = Path.Combine(_dir.Path, $"edited-{Guid.NewGuid():N}.gguf");
        using (var f = GgufFile.Open(good))
        {
            var w = new GgufWriter();
            foreach (var (key, value) in f.Metadata) w.Set(key, value);
            foreach (var t in f.Tensors)
                if (keep?.Invoke(t) ?? true) w.AddTensor(f, t);
            edit(w);
            w.WriteFile(path);
        }
        return path;
    }

    private static void AssertRefused(string path, params string[] phrases)
    {
        var e = Assert.Throws<ModelFormatException>(() => LoadedModel.Load(path).Dispose())!;
        Assert.That(e.Message, Does.StartWith(path + ": "));
        foreach (string p in phrases) Assert.That(e.Message, Does.Contain(p));
    }

    private static LlamaConfig ConfigOf(string path)
    {
        using var f = GgufFile.Open(path);
        return LlamaConfig.FromGguf(f);
    }

    [Test]
    public void Gemma3_slides_five_layers_in_six_with_its_local_rope_base()
    {
        var c = ConfigOf(Edited("gemma3-small", _ => { }));
        Assert.That(Enumerable.Range(0, 12).Select(c.IsSliding), Is.EqualTo(new[] { true, true, true, true, true, false, true, true, true, true, true, false }));
        Assert.That(c.RopeThetaOf(0), Is.EqualTo(10000f));
        Assert.That(c.RopeThetaOf(5), Is.EqualTo(1e6f));
        Assert.That(c.AttentionOf(0), Is.EqualTo(new AttentionVariant(0f, 0f, 8)));
        Assert.That(c.AttentionOf(5), Is.EqualTo(new AttentionVariant(0f, 0f, 0)));
        Assert.That((c.EmbeddingScale, c.FinalSoftCap, c.QkNorm, c.PostNorms), Is.EqualTo((16f, 0f, true, true)));
    }

    [Test]
    public void Gemma2_alternates_and_caps_with_the_file_values()
    {
        var c = ConfigOf(Edited("gemma2-small", w => w.Set("gemma2.attention.sliding_window_pattern", GgufValue.Of(3u))));
        Assert.That(Enumerable.Range(0, 6).Select(c.IsSliding), Is.EqualTo(new[] { true, true, false, true, true, false }), "the file's period");
        Assert.That(c.AttentionOf(0), Is.EqualTo(new AttentionVariant(0f, 0.1f, 8)));
        Assert.That(c.FinalSoftCap, Is.EqualTo(0.5f));
        var d = ConfigOf(Edited("gemma2-small", w => { w.Remove("gemma2.attention.sliding_window"); w.Remove("gemma2.attn_logit_softcapping"); w.Remove("gemma2.final_logit_softcapping"); }));
        Assert.That((d.SlidingWindow, d.SlidingWindowPeriod, d.AttentionSoftCap, d.FinalSoftCap), Is.EqualTo((4096, 2, 50f, 30f)), "llama.cpp's defaults");
    }

    // The 27B models scale queries by 1/√(dim / heads), not 1/√head_dim (llama.cpp tells them by their layer count).
    [TestCase("gemma2-small", "gemma2", 46u)]
    [TestCase("gemma3-small", "gemma3", 62u)]
    public void The_27B_layer_counts_scale_by_dim_over_heads(string shape, string arch, uint layers)
    {
        var c = ConfigOf(Edited(shape, w => w.Set($"{arch}.block_count", GgufValue.Of(layers))));
        Assert.That(c.AttentionScale, Is.EqualTo(1f / MathF.Sqrt(256 / 4)));   // dim 256, 4 heads: 1/8 (head size 64 gives 0 = 1/√64 by default)
        Assert.That(c.HasAttentionVariants, Is.True);
        var plain = ConfigOf(Edited(shape, _ => { }));
        Assert.That(plain.AttentionScale, Is.EqualTo(0f));
    }

    [Test]
    public void A_llama_window_slides_every_layer_unless_it_spans_the_context()
    {
        var c = ConfigOf(Edited("qwen2-small", w => w.Set("qwen2.attention.sliding_window", GgufValue.Of(100u))));
        Assert.That(Enumerable.Range(0, 2).Select(c.IsSliding), Is.All.True);
        var spans = ConfigOf(Edited("qwen2-small", w => w.Set("qwen2.attention.sliding_window", GgufValue.Of(512u))));
        Assert.That((spans.SlidingWindow, spans.HasAttentionVariants), Is.EqualTo((0, false)));
    }

    [TestCase("gemma3-small", "blk.3.post_ffw_norm.weight")]
    [TestCase("gemma3-small", "blk.0.attn_q_norm.weight")]
    [TestCase("gemma2-small", "blk.1.post_attention_norm.weight")]
    [TestCase("qwen2-small", "blk.1.attn_v.bias")]
    public void A_missing_tensor_of_the_family_is_named(string shape, string tensor) =>
        AssertRefused(Edited(shape, _ => { }, t => t.Name != tensor), $"tensor '{tensor}' is missing", $"architecture {ShapeCatalog.Get(shape).Architecture}");

    [Test]
    public void A_misshaped_head_norm_is_named()
    {
        string path = Edited("gemma3-small", w => w.AddTensor("blk.2.attn_k_norm.weight", Tessera.Quantization.GgmlType.F32, [32], new byte[32 * 4]),
            t => t.Name != "blk.2.attn_k_norm.weight");
        AssertRefused(path, "tensor 'blk.2.attn_k_norm.weight' has shape", "[1, 64]", "architecture gemma3");
    }

    [Test]
    public void An_unknown_architecture_is_refused_by_name() =>
        AssertRefused(Edited("gemma3-small", w => w.Set("general.architecture", GgufValue.Of("gemma4"))),
            "architecture 'gemma4' is not supported", "gemma3");

    [Test]
    public void A_per_layer_window_pattern_is_refused() =>
        AssertRefused(Edited("gemma3-small", w => w.Set("gemma3.attention.sliding_window_pattern", GgufValue.Of(new[] { true, false }))),
            "gemma3.attention.sliding_window_pattern", "should be an integer");
}
