using System.Text.Json;

namespace Tessera.Synthesis;

/// <summary>The hyperparameters that fix a Llama-family model's tensor shapes (and what a GGUF file says
/// about them), without any weights.</summary>
public sealed record ModelShape
{
    /// <summary>Catalog name, e.g. <c>stories110m</c>.</summary>
    public required string Name { get; init; }
    /// <summary>GGUF architecture: <c>llama</c> (default), <c>qwen2</c> (Q/K/V biases), <c>qwen3</c> (per-head Q/K
    /// norms, head size from <see cref="HeadSize"/>), <c>gemma2</c> or <c>gemma3</c> (post-norms, GeGLU, sliding windows;
    /// Gemma 2 soft caps, Gemma 3 per-head Q/K norms).</summary>
    public string Architecture { get; init; } = "llama";
    /// <summary>Sliding window (<c>attention.sliding_window</c>); 0 for none (Gemma 2 then gets llama.cpp's 4096).</summary>
    public int SlidingWindow { get; init; }
    /// <summary>Gemma 2's soft caps of the attention scores and of the final logits (<c>attn_logit_softcapping</c>,
    /// <c>final_logit_softcapping</c>; null: 50 and 30 as the real models; small shapes set them low, so that a test
    /// sees them applied to random weights' small scores).</summary>
    public float? AttnSoftCap { get; init; }
    /// <inheritdoc cref="AttnSoftCap"/>
    public float? FinalSoftCap { get; init; }

    /// <summary>RoPE frequency scaling: <c>llama3</c> (per-pair factors by Llama 3.1's rule, written as
    /// <c>rope_freqs</c>), <c>linear</c> (<c>rope.scaling.type</c> and <c>factor</c>), <c>longrope</c> (Phi-3: short and
    /// long factor tensors and the attention factor); null for none.</summary>
    public string? RopeScaling { get; init; }
    /// <summary>The scaling factor of <c>llama3</c> and <c>linear</c>.</summary>
    public float RopeScale { get; init; } = 8f;
    /// <summary>The context RoPE was trained at before extension (<c>llama3</c>, <c>longrope</c>); 0 for
    /// <see cref="Context"/>.</summary>
    public int RopeOriginalContext { get; init; }

    /// <summary>Whether the architecture is a Gemma (post-norms around attention and feed-forward).</summary>
    public bool IsGemma => Architecture is "gemma2" or "gemma3";
    /// <summary>Head size when it is not <see cref="Dim"/> / <see cref="Heads"/> (Qwen3's <c>attention.key_length</c>).</summary>
    public int? HeadSize { get; init; }
    /// <summary>Hidden size (<c>embedding_length</c>).</summary>
    public required int Dim { get; init; }
    /// <summary>Number of transformer blocks.</summary>
    public required int Layers { get; init; }
    /// <summary>Query heads.</summary>
    public required int Heads { get; init; }
    /// <summary>Key/value heads (grouped-query attention when fewer than <see cref="Heads"/>).</summary>
    public required int KvHeads { get; init; }
    /// <summary>Feed-forward (SwiGLU) hidden size.</summary>
    public required int Ffn { get; init; }
    /// <summary>Vocabulary size: rows of <c>token_embd</c> and <c>output</c>.</summary>
    public required int Vocab { get; init; }
    /// <summary>Trained context length.</summary>
    public int Context { get; init; } = 2048;
    /// <summary>RoPE base frequency.</summary>
    public float RopeTheta { get; init; } = 10000f;
    /// <summary>RMSNorm epsilon.</summary>
    public float NormEps { get; init; } = 1e-5f;
    /// <summary>True when the output projection is the token embedding (no <c>output.weight</c>).</summary>
    public bool Tied { get; init; }

    /// <summary>Size of one attention head.</summary>
    public int HeadDim => HeadSize ?? Dim / Heads;

    /// <summary>Width of all query heads together.</summary>
    public int QDim => Heads * HeadDim;

    /// <summary>Number of weights (all tensors, norms included).</summary>
    public long ParameterCount
    {
        get
        {
            long kv = (long)KvHeads * HeadDim;
            long layer = 2L * Dim + 2L * Dim * QDim + 2L * Dim * kv + 3L * Dim * Ffn
                + (Architecture == "qwen2" ? QDim + 2 * kv : 0) + (Architecture is "qwen3" or "gemma3" ? 2L * HeadDim : 0)
                + (IsGemma ? 2L * Dim : 0);
            return (long)Vocab * Dim * (Tied ? 1 : 2) + Dim + Layers * layer;
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the shape and the problem when the numbers cannot make
    /// a model (GGUF rows must be whole 32-element blocks; heads must divide evenly).</summary>
    public void Validate()
    {
        void Check(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"shape '{Name}': {what}");
        }
        Check(Dim > 0 && Layers > 0 && Heads > 0 && KvHeads > 0 && Ffn > 0 && Vocab > 0 && Context > 0,
            "dim, layers, heads, kv_heads, ffn, vocab and context must all be positive");
        Check(Architecture is "llama" or "qwen2" or "qwen3" or "gemma2" or "gemma3" or "phi3", $"architecture '{Architecture}' is not one synth writes (llama, qwen2, qwen3, gemma2, gemma3, phi3)");
        Check(RopeScaling is null or "llama3" or "linear" or "longrope", $"rope_scaling '{RopeScaling}' is not one synth writes (llama3, linear, longrope)");
        Check(RopeScaling != "longrope" || Architecture == "phi3", "rope_scaling longrope is Phi-3's (arch phi3)");
        Check(RopeScale > 0 && RopeOriginalContext >= 0 && RopeOriginalContext <= Context, "rope_scale must be positive and rope_orig_context within the context");
        Check(SlidingWindow >= 0 && (AttnSoftCap ?? 1) > 0 && (FinalSoftCap ?? 1) > 0, "window must not be negative and soft caps must be positive");
        Check(HeadSize is null || HeadSize > 0, $"head_dim {HeadSize} must be positive");
        Check(HeadSize is not null || Dim % Heads == 0, $"dim {Dim} is not a multiple of heads {Heads}");
        Check(Heads % KvHeads == 0, $"heads {Heads} is not a multiple of kv_heads {KvHeads}");
        Check(HeadDim % 2 == 0, $"head size {HeadDim} is odd (RoPE rotates pairs)");
        Check(Dim % 32 == 0 && Ffn % 32 == 0, $"dim {Dim} and ffn {Ffn} must be multiples of 32 (the quantization block)");
        Check(RopeTheta > 0 && NormEps > 0, "rope_theta and norm_eps must be positive");
    }
}

/// <summary>The catalog of real models' shapes, <c>models/shapes.json</c>, embedded in the engine so it is found
/// without a checkout.</summary>
public static class ShapeCatalog
{
    private const string ResourceName = "Tessera.Synthesis.shapes.json";
    private static readonly Lazy<IReadOnlyDictionary<string, ModelShape>> Shapes = new(() =>
    {
        using var s = typeof(ShapeCatalog).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"the engine assembly lacks its embedded shape catalog ({ResourceName})");
        return Parse(s, "models/shapes.json");
    });

    /// <summary>Every shape, by name.</summary>
    public static IReadOnlyDictionary<string, ModelShape> All => Shapes.Value;

    /// <summary>The named shape; an <see cref="ArgumentException"/> listing the known names when there is none.</summary>
    public static ModelShape Get(string name) =>
        All.TryGetValue(name, out var s) ? s
            : throw new ArgumentException($"--shape {name}: unknown shape (known: {string.Join(", ", All.Keys.Order(StringComparer.Ordinal))})");

    /// <summary>Reads a catalog: an object of name → { arch, dim, layers, heads, kv_heads, head_dim, ffn, vocab,
    /// context, rope_theta, norm_eps, tied, window, attn_softcap, final_softcap, rope_scaling, rope_scale,
    /// rope_orig_context } (arch, head_dim and those after vocab optional); <paramref name="source"/> names it in errors.</summary>
    public static IReadOnlyDictionary<string, ModelShape> Parse(Stream json, string source)
    {
        using var doc = JsonDocument.Parse(json);
        var result = new Dictionary<string, ModelShape>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            JsonElement o = p.Value;
            int Int(string key) => o.TryGetProperty(key, out var v) && v.TryGetInt32(out int x) ? x
                : throw new FormatException($"{source}: shape '{p.Name}' needs an integer '{key}'");
            float Float(string key, float dflt) => o.TryGetProperty(key, out var v) ? v.GetSingle() : dflt;
            var shape = new ModelShape
            {
                Name = p.Name,
                Architecture = o.TryGetProperty("arch", out var a) ? a.GetString() ?? "llama" : "llama",
                HeadSize = o.TryGetProperty("head_dim", out _) ? Int("head_dim") : null,
                Dim = Int("dim"),
                Layers = Int("layers"),
                Heads = Int("heads"),
                KvHeads = Int("kv_heads"),
                Ffn = Int("ffn"),
                Vocab = Int("vocab"),
                Context = o.TryGetProperty("context", out _) ? Int("context") : 2048,
                RopeTheta = Float("rope_theta", 10000f),
                NormEps = Float("norm_eps", 1e-5f),
                Tied = o.TryGetProperty("tied", out var t) && t.GetBoolean(),
                SlidingWindow = o.TryGetProperty("window", out _) ? Int("window") : 0,
                AttnSoftCap = o.TryGetProperty("attn_softcap", out var ac) ? ac.GetSingle() : null,
                FinalSoftCap = o.TryGetProperty("final_softcap", out var fc) ? fc.GetSingle() : null,
                RopeScaling = o.TryGetProperty("rope_scaling", out var rs) ? rs.GetString() : null,
                RopeScale = Float("rope_scale", 8f),
                RopeOriginalContext = o.TryGetProperty("rope_orig_context", out _) ? Int("rope_orig_context") : 0,
            };
            shape.Validate();
            result.Add(p.Name, shape);
        }
        return result;
    }
}
