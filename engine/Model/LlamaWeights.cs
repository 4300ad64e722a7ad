using Tessera.Formats;

namespace Tessera.Model;

/// <summary>The weights of one transformer block.</summary>
public sealed class LayerWeights
{
    /// <summary>RMSNorm before attention, (dim).</summary>
    public required float[] AttnNorm { get; init; }
    /// <summary>Query projection, (n_heads * head_dim, dim).</summary>
    public required WeightTensor Wq { get; init; }
    /// <summary>Key projection, (n_kv_heads * head_dim, dim).</summary>
    public required WeightTensor Wk { get; init; }
    /// <summary>Value projection, (n_kv_heads * head_dim, dim).</summary>
    public required WeightTensor Wv { get; init; }
    /// <summary>Attention output projection, (dim, n_heads * head_dim).</summary>
    public required WeightTensor Wo { get; init; }
    /// <summary>RMSNorm before the feed-forward network, (dim).</summary>
    public required float[] FfnNorm { get; init; }
    /// <summary>SwiGLU gate projection, (ffn, dim).</summary>
    public required WeightTensor Gate { get; init; }
    /// <summary>SwiGLU up projection, (ffn, dim).</summary>
    public required WeightTensor Up { get; init; }
    /// <summary>SwiGLU down projection, (dim, ffn).</summary>
    public required WeightTensor Down { get; init; }
    /// <summary>Biases of the Q, K and V projections ((n_heads · head_dim), (n_kv_heads · head_dim) twice), or null
    /// (<see cref="LlamaConfig.AttentionBias"/>).</summary>
    public float[]? BiasQ { get; init; }
    /// <inheritdoc cref="BiasQ"/>
    public float[]? BiasK { get; init; }
    /// <inheritdoc cref="BiasQ"/>
    public float[]? BiasV { get; init; }
    /// <summary>RMSNorm weights of each Q and each K head, (head_dim), or null (<see cref="LlamaConfig.QkNorm"/>).</summary>
    public float[]? QNorm { get; init; }
    /// <inheritdoc cref="QNorm"/>
    public float[]? KNorm { get; init; }
    /// <summary>RMSNorm of the attention output before its residual add, (dim), or null (<see cref="LlamaConfig.PostNorms"/>).</summary>
    public float[]? AttnPostNorm { get; init; }
    /// <summary>RMSNorm of the feed-forward output before its residual add, (dim), or null.</summary>
    public float[]? FfnPostNorm { get; init; }
}

/// <summary>All weights of a Llama model, by llama.cpp's tensor names, shapes checked against the config.</summary>
public sealed class LlamaWeights
{
    /// <summary>Token embedding table, (vocab, dim).</summary>
    public required WeightTensor TokenEmbedding { get; init; }
    /// <summary>Transformer blocks.</summary>
    public required IReadOnlyList<LayerWeights> Layers { get; init; }
    /// <summary>Final RMSNorm, (dim).</summary>
    public required float[] OutputNorm { get; init; }
    /// <summary>Output projection to logits, (vocab, dim); the embedding table when tied.</summary>
    public required WeightTensor Output { get; init; }
    /// <summary>RoPE's per-pair divisors of the angle, (head_dim / 2), for every layer (Llama 3.1's <c>rope_freqs</c>),
    /// or null.</summary>
    public float[]? RopeFactors { get; init; }
    /// <summary>Phi-3's LongRoPE factors (<c>rope_factors_long</c>, <c>rope_factors_short</c>), (head_dim / 2) each:
    /// the long ones for a context past <see cref="LlamaConfig.RopeOriginalContext"/>; null when the file has none.</summary>
    public float[]? RopeFactorsLong { get; init; }
    /// <inheritdoc cref="RopeFactorsLong"/>
    public float[]? RopeFactorsShort { get; init; }

    // An optional vector of RoPE factors, each a positive number (they divide angles).
    private static float[]? RopeFactorVector(IWeightSource src, string name, LlamaConfig c)
    {
        var t = src.Find(name, 1, c.HeadDim / 2);
        if (t == null) return null;
        var v = t.ToFloat32();
        foreach (float x in v)
            if (!(x > 0) || !float.IsFinite(x))
                throw new ModelFormatException(src.Path, $"tensor '{name}' holds {x}: RoPE factors must be positive numbers");
        return v;
    }

    /// <summary>Loads and shape-checks every tensor the config calls for.</summary>
    public static LlamaWeights Load(IWeightSource src, LlamaConfig c)
    {
        WeightTensor Need(string name, int rows, int cols) =>
            src.Find(name, rows, cols) ?? throw new ModelFormatException(src.Path, $"tensor '{name}' is missing (architecture {c.Architecture})");
        float[] Vector(string name, int length) => Need(name, 1, length).ToFloat32();
        float[] Norm(string name) => Vector(name, c.Dim);
        float[]? Optional(bool present, string name, int length) => present ? Vector(name, length) : null;

        var embedding = Need("token_embd.weight", c.VocabSize, c.Dim);
        var layers = new LayerWeights[c.Layers];
        // Phi-3 fuses Q, K, V into one tensor and gate, up into another (llama.cpp also reads it unfused); the parts
        // are row ranges of the fused tensor, in place.
        bool phi3 = c.Architecture == "phi3";
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"blk.{i}.";
            var qkv = phi3 ? src.Find(p + "attn_qkv.weight", c.QDim + 2 * c.KvDim, c.Dim) : null;
            if (phi3 && qkv == null && src.Find(p + "attn_q.weight", c.QDim, c.Dim) == null)
                throw new ModelFormatException(src.Path, $"tensor '{p}attn_qkv.weight' is missing (architecture {c.Architecture}; nor are Q, K and V apart)");
            var gateUp = phi3 ? Need(p + "ffn_up.weight", 2 * c.FfnDim, c.Dim) : null;
            layers[i] = new LayerWeights
            {
                AttnNorm = Norm(p + "attn_norm.weight"),
                Wq = qkv?.RowRange(0, c.QDim, p + "attn_qkv.weight[q]") ?? Need(p + "attn_q.weight", c.QDim, c.Dim),
                Wk = qkv?.RowRange(c.QDim, c.KvDim, p + "attn_qkv.weight[k]") ?? Need(p + "attn_k.weight", c.KvDim, c.Dim),
                Wv = qkv?.RowRange(c.QDim + c.KvDim, c.KvDim, p + "attn_qkv.weight[v]") ?? Need(p + "attn_v.weight", c.KvDim, c.Dim),
                Wo = Need(p + "attn_output.weight", c.Dim, c.QDim),
                FfnNorm = Norm(p + "ffn_norm.weight"),
                // ggml's swiglu on a fused tensor: silu of the first half times the second.
                Gate = gateUp?.RowRange(0, c.FfnDim, p + "ffn_up.weight[gate]") ?? Need(p + "ffn_gate.weight", c.FfnDim, c.Dim),
                Up = gateUp?.RowRange(c.FfnDim, c.FfnDim, p + "ffn_up.weight[up]") ?? Need(p + "ffn_up.weight", c.FfnDim, c.Dim),
                Down = Need(p + "ffn_down.weight", c.Dim, c.FfnDim),
                BiasQ = Optional(c.AttentionBias, p + "attn_q.bias", c.QDim),
                BiasK = Optional(c.AttentionBias, p + "attn_k.bias", c.KvDim),
                BiasV = Optional(c.AttentionBias, p + "attn_v.bias", c.KvDim),
                QNorm = Optional(c.QkNorm, p + "attn_q_norm.weight", c.HeadDim),
                KNorm = Optional(c.QkNorm, p + "attn_k_norm.weight", c.HeadDim),
                AttnPostNorm = Optional(c.PostNorms, p + "post_attention_norm.weight", c.Dim),
                FfnPostNorm = Optional(c.PostNorms, p + "post_ffw_norm.weight", c.Dim),
            };
        }
        var output = c.TiedEmbeddings ? embedding : Need("output.weight", c.VocabSize, c.Dim);
        if (c.RopeDimensions != 0 && c.RopeDimensions != c.HeadDim)
            throw new ModelFormatException(src.Path, $"{c.Architecture}.rope.dimension_count = {c.RopeDimensions}: RoPE on part of a head (of {c.HeadDim}) is not supported");
        return new LlamaWeights
        {
            TokenEmbedding = embedding,
            Layers = layers,
            OutputNorm = Norm("output_norm.weight"),
            Output = output,
            RopeFactors = RopeFactorVector(src, "rope_freqs.weight", c),
            RopeFactorsLong = RopeFactorVector(src, "rope_factors_long.weight", c),
            RopeFactorsShort = RopeFactorVector(src, "rope_factors_short.weight", c),
        };
    }
}
