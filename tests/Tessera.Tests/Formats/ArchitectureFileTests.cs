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

    // RoPE scaling and Phi-3 as llama.cpp reads them: per-pair factors, the linear scale (not on Gemma 3's sliding
    // layers), LongRoPE's factors chosen by the context, Phi-3's fused tensors; and what is refused, by name.

    [Test]
    public void Llama3_factors_follow_the_llama31_rule()
    {
        // Llama 3.1 8B's numbers: head 128, base 500000, factor 8, low 1, high 4, original 8192. Pair 0 (wavelength 2π)
        // keeps its frequency, the last (wavelength ~ 2π · 500000) is slowed 8 times, one between is blended.
        var f = RopeScalingFactors.Llama3(128, 500000f, 8, 1, 4, 8192);
        Assert.That(f, Has.Length.EqualTo(64));
        Assert.That((f[0], f[63]), Is.EqualTo((1f, 8f)));
        Assert.That(f.Count(x => x > 1 && x < 8), Is.GreaterThan(0), "a band is blended");
        Assert.That(f, Is.Ordered, "slower pairs are never scaled less");
    }

    [Test]
    public void A_file_with_rope_freqs_loads_them()
    {
        using var m = LoadedModel.Load(Edited("llama3-small", _ => { }));
        Assert.That(m.Weights.RopeFactors, Is.EqualTo(RopeScalingFactors.Llama3(64, 500000f, 8, 1, 4, 64)));
    }

    [Test]
    public void Linear_scaling_scales_gemma3_global_layers_only()
    {
        using var f = GgufFile.Open(Edited("gemma3-linear-small", _ => { }));
        var c = LlamaConfig.FromGguf(f);
        Assert.That(Enumerable.Range(0, 6).Select(c.RopeFreqScaleOf), Is.EqualTo(new[] { 1f, 1f, 1f, 1f, 1f, 0.125f }));
    }

    [Test]
    public void Phi3_splits_fused_tensors_ignores_its_window_and_picks_longrope_factors_by_context()
    {
        using var m = LoadedModel.Load(Edited("phi3-small", _ => { }));
        var c = m.Config;
        Assert.That((c.SlidingWindow, c.RopeLayout, c.RopeOriginalContext), Is.EqualTo((0, RopeLayout.RotateHalf, 32)));
        Assert.That(c.RopeAttnFactor, Is.EqualTo(RopeScalingFactors.LongRopeAttnFactor(4096, 32)).Within(1e-6f));
        Assert.That((c.UsesLongRopeFactors(32), c.UsesLongRopeFactors(33)), Is.EqualTo((false, true)));
        var l = m.Weights.Layers[1];
        Assert.That((l.Wq.Rows, l.Wk.Rows, l.Wv.Rows, l.Gate.Rows, l.Up.Rows), Is.EqualTo((256, 128, 128, 768, 768)));
        // The parts are consecutive rows of the fused tensors: K's first row is the fused tensor's row 256, up's is 768.
        Assert.That(l.Wk.Row(0).ToArray(), Is.EqualTo(FusedRow(m.Path, "blk.1.attn_qkv.weight", 256)));
        Assert.That(l.Up.Row(0).ToArray(), Is.EqualTo(FusedRow(m.Path, "blk.1.ffn_up.weight", 768)));
        Assert.That((m.Weights.RopeFactorsLong!.Length, m.Weights.RopeFactorsShort!.Length), Is.EqualTo((32, 32)));
        using var shortState = m.Model.CreateState(32);
        using var longState = m.Model.CreateState(64);
        Assert.That((shortState.Batched.LongRope, longState.Batched.LongRope), Is.EqualTo((false, true)));
        // The long factors change the logits (a prompt past nothing: positions 1.. already turn differently).
        int[] prompt = [1, 80, 147, 201, 282, 57];
        m.Model.Forward(shortState, prompt);
        m.Model.Forward(longState, prompt);
        Assert.That(longState.Logits, Is.Not.EqualTo(shortState.Logits));
    }

    private static byte[] FusedRow(string path, string name, int row)
    {
        using var f = GgufFile.Open(path);
        var t = f.FindTensor(name)!;
        int rowBytes = (int)(t.ByteSize / t.RowCount);
        return t.Span.Slice(row * rowBytes, rowBytes).ToArray();
    }

    [Test]
    public void Phi3_without_its_fused_qkv_is_named() =>
        AssertRefused(Edited("phi3-small", _ => { }, t => t.Name != "blk.1.attn_qkv.weight"), "tensor 'blk.1.attn_qkv.weight' is missing", "architecture phi3");

    [Test]
    public void Phi3_with_an_unfused_up_is_named()
    {
        string path = Edited("phi3-small", w => w.AddTensor("blk.0.ffn_up.weight", Tessera.Quantization.GgmlType.F32, [256, 768], new byte[256 * 768 * 4]),
            t => t.Name != "blk.0.ffn_up.weight");
        AssertRefused(path, "tensor 'blk.0.ffn_up.weight' has shape", "[1536, 256]", "architecture phi3");
    }

    [Test]
    public void Yarn_and_partial_rope_are_refused_by_key()
    {
        AssertRefused(Edited("llama3-small", w => w.Set("llama.rope.scaling.type", GgufValue.Of("yarn"))), "llama.rope.scaling.type = 'yarn'", "linear");
        AssertRefused(Edited("llama3-small", w => w.Set("llama.rope.dimension_count", GgufValue.Of(32u))), "llama.rope.dimension_count = 32", "part of a head");
    }

    [Test]
    public void A_non_positive_rope_factor_is_named()
    {
        var bytes = new byte[32 * 4];
        BitConverter.TryWriteBytes(bytes.AsSpan(8), -1f);
        AssertRefused(Edited("llama3-small", w => w.AddTensor("rope_freqs.weight", Tessera.Quantization.GgmlType.F32, [32], bytes),
            t => t.Name != "rope_freqs.weight"), "tensor 'rope_freqs.weight' holds", "positive");
    }
}
