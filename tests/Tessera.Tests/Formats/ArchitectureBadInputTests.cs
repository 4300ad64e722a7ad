using NUnit.Framework;
using Tessera.Formats;
using Tessera.Formats.Gguf;
using Tessera.Model;
using Tessera.Synthesis;

namespace Tessera.Tests.Formats;

/// <summary>
/// Files of a known family that lack a tensor of that family, carry it misshaped, or name an architecture or a window
/// pattern Tessera does not run: one <see cref="ModelFormatException"/> naming the file, the architecture and the
/// problem, never a silent fall back to Llama semantics. The files are a small Gemma 3 / Qwen2 written by synth and
/// copied with one edit.
/// </summary>
[TestFixture]
public class ArchitectureBadInputTests
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
