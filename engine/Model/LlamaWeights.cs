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
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"blk.{i}.";
            layers[i] = new LayerWeights
            {
                AttnNorm = Norm(p + "attn_norm.weight"),
                Wq = Need(p + "attn_q.weight", c.QDim, c.Dim),
                Wk = Need(p + "attn_k.weight", c.KvDim, c.Dim),
                Wv = Need(p + "attn_v.weight", c.KvDim, c.Dim),
                Wo = Need(p + "attn_output.weight", c.Dim, c.QDim),
                FfnNorm = Norm(p + "ffn_norm.weight"),
                Gate = Need(p + "ffn_gate.weight", c.FfnDim, c.Dim),
                Up = Need(p + "ffn_up.weight", c.FfnDim, c.Dim),
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
        return new LlamaWeights
        {
            TokenEmbedding = embedding,
            Layers = layers,
            OutputNorm = Norm("output_norm.weight"),
            Output = output,
        };
    }
}
