using Tessera.Formats;
using Tessera.Formats.Gguf;
using Tessera.Formats.HuggingFace;

namespace Tessera.Model;

/// <summary>
/// Hyper-parameters of a Llama-family decoder, from GGUF metadata or a Hugging Face <c>config.json</c>: Llama and
/// Mistral, and the families that differ from it only in what the flags below say (Qwen2: biases on Q, K and V;
/// Qwen3: RMSNorm on each head of Q and K). Immutable; <see cref="Validate"/> runs in the factories, so every instance
/// is consistent.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>Architecture name as the file gives it (e.g. <c>llama</c>).</summary>
    public required string Architecture { get; init; }
    /// <summary>Vocabulary size (rows of the embedding table).</summary>
    public required int VocabSize { get; init; }
    /// <summary>Model (residual stream) width.</summary>
    public required int Dim { get; init; }
    /// <summary>Width of the SwiGLU hidden layer.</summary>
    public required int FfnDim { get; init; }
    /// <summary>Number of transformer blocks.</summary>
    public required int Layers { get; init; }
    /// <summary>Query heads.</summary>
    public required int Heads { get; init; }
    /// <summary>Key/value heads (grouped-query attention when fewer than <see cref="Heads"/>).</summary>
    public required int KvHeads { get; init; }
    /// <summary>Width of one head.</summary>
    public required int HeadDim { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public required float NormEps { get; init; }
    /// <summary>RoPE base frequency.</summary>
    public required float RopeTheta { get; init; }
    /// <summary>Pairing of RoPE dimensions (depends on how the file stores Q/K).</summary>
    public required RopeLayout RopeLayout { get; init; }
    /// <summary>Training context length: the longest sequence the model supports.</summary>
    public required int ContextLength { get; init; }
    /// <summary>True when the output projection is the token embedding table.</summary>
    public required bool TiedEmbeddings { get; init; }
    /// <summary>Q, K and V projections add a bias (<c>attn_q.bias</c>, …; Qwen2).</summary>
    public bool AttentionBias { get; init; }
    /// <summary>Each head of Q and K is RMS-normalized (weights <c>attn_q_norm</c>, <c>attn_k_norm</c> of head size)
    /// before RoPE (Qwen3).</summary>
    public bool QkNorm { get; init; }

    /// <summary>The architectures Tessera runs, as GGUF's <c>general.architecture</c> names them.</summary>
    public static IReadOnlyList<string> Architectures { get; } = ["llama", "mistral", "qwen2", "qwen3"];

    /// <summary>Query heads per key/value head.</summary>
    public int GroupSize => Heads / KvHeads;
    /// <summary>Width of all query heads together.</summary>
    public int QDim => Heads * HeadDim;
    /// <summary>Width of all key (or value) heads together.</summary>
    public int KvDim => KvHeads * HeadDim;
    /// <summary>Bytes one cached position takes: K and V of every layer, F16.</summary>
    public long KvBytesPerPosition => 2L * Layers * KvDim * sizeof(ushort);

    /// <summary>Reads the <c>{arch}.*</c> keys of a GGUF file (llama.cpp's names).</summary>
    public static LlamaConfig FromGguf(GgufFile f)
    {
        string arch = f.GetString("general.architecture");
        if (!Architectures.Contains(arch))
            throw new ModelFormatException(f.Path,
                $"architecture '{arch}' is not supported (general.architecture must be one of {string.Join(", ", Architectures)})");
        // llama.cpp's converter permutes Llama's Q and K rows so that RoPE rotates adjacent pairs; Qwen's it leaves as
        // trained (NeoX RoPE: each dimension with the one half a head away).
        bool qwen = arch is "qwen2" or "qwen3";
        int dim = (int)f.GetUInt32($"{arch}.embedding_length");
        int heads = (int)f.GetUInt32($"{arch}.attention.head_count");
        int kvHeads = f.TryGetUInt32($"{arch}.attention.head_count_kv", out uint kv) ? (int)kv : heads;
        int headDim = f.TryGetUInt32($"{arch}.attention.key_length", out uint kl) ? (int)kl : heads > 0 ? dim / heads : 0;
        if (f.TryGetUInt32($"{arch}.attention.sliding_window", out uint sw) && sw > 0)
            throw new ModelFormatException(f.Path, $"{arch}.attention.sliding_window = {sw}: sliding-window attention is not supported");
        if (f.FindTensor("rope_freqs.weight") != null ||
            (f.TryGetString($"{arch}.rope.scaling.type", out string scaling) && scaling is not ("" or "none")))
            throw new ModelFormatException(f.Path, "RoPE frequency scaling (rope_freqs / rope.scaling.type) is not supported yet");
        var tok = f.FindTensor("token_embd.weight") ?? throw new ModelFormatException(f.Path, "tensor 'token_embd.weight' is missing");
        int vocab = f.TryGetUInt32($"{arch}.vocab_size", out uint vs) ? (int)vs : (int)tok.RowCount;
        var config = new LlamaConfig
        {
            Architecture = arch,
            VocabSize = vocab,
            Dim = dim,
            FfnDim = (int)f.GetUInt32($"{arch}.feed_forward_length"),
            Layers = (int)f.GetUInt32($"{arch}.block_count"),
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim,
            NormEps = f.TryGetFloat($"{arch}.attention.layer_norm_rms_epsilon", out float eps) ? eps : 1e-5f,
            RopeTheta = f.TryGetFloat($"{arch}.rope.freq_base", out float theta) ? theta : 10000f,
            RopeLayout = qwen ? RopeLayout.RotateHalf : RopeLayout.AdjacentPairs,
            ContextLength = (int)f.GetUInt32($"{arch}.context_length"),
            TiedEmbeddings = f.FindTensor("output.weight") == null,
            AttentionBias = arch == "qwen2",
            QkNorm = arch == "qwen3",
        };
        config.Validate(f.Path);
        return config;
    }

    /// <summary>Reads a Hugging Face <c>config.json</c> (already parsed).</summary>
    public static LlamaConfig FromHf(HfConfig hf, string path)
    {
        if (hf.ModelType is not ("llama" or "mistral" or "qwen2" or "qwen3"))
            throw new ModelFormatException(path, $"model_type '{hf.ModelType}' is not supported (Tessera runs llama, mistral, qwen2 and qwen3)");
        if (hf.SlidingWindow is int sw && sw > 0 && sw < hf.MaxPositionEmbeddings)
            throw new ModelFormatException(path, $"sliding_window = {sw}: sliding-window attention is not supported");
        if (hf.RopeScaling != null)
            throw new ModelFormatException(path, $"rope_scaling of type '{hf.RopeScaling.Type}' is not supported yet");
        if (hf.MlpBias) throw new ModelFormatException(path, "mlp_bias is set: biases on the feed-forward projections are not supported");
        // Qwen2 always has Q/K/V biases (its config has no attention_bias key); the others' attention_bias is refused.
        if (hf.AttentionBias && hf.ModelType != "qwen2")
            throw new ModelFormatException(path, $"attention_bias is set for model_type '{hf.ModelType}': Q/K/V biases are supported for qwen2 only");
        bool bias = hf.ModelType == "qwen2";
        var config = new LlamaConfig
        {
            Architecture = hf.ModelType,
            VocabSize = hf.VocabSize,
            Dim = hf.HiddenSize,
            FfnDim = hf.IntermediateSize,
            Layers = hf.NumHiddenLayers,
            Heads = hf.NumAttentionHeads,
            KvHeads = hf.NumKeyValueHeads,
            HeadDim = hf.ResolvedHeadDim,
            NormEps = (float)hf.RmsNormEps,
            RopeTheta = (float)hf.RopeTheta,
            RopeLayout = RopeLayout.RotateHalf,
            ContextLength = hf.MaxPositionEmbeddings,
            TiedEmbeddings = hf.TieWordEmbeddings,
            AttentionBias = bias,
            QkNorm = hf.ModelType == "qwen3",
        };
        config.Validate(path);
        return config;
    }

    /// <summary>Checks that the numbers fit together; throws naming the file and the field.</summary>
    public void Validate(string path)
    {
        void Positive(string name, long v)
        {
            if (v <= 0) throw new ModelFormatException(path, $"{name} must be positive, got {v}");
        }
        Positive("vocabulary size", VocabSize);
        Positive("embedding length", Dim);
        Positive("feed-forward length", FfnDim);
        Positive("block count", Layers);
        Positive("head count", Heads);
        Positive("key/value head count", KvHeads);
        Positive("head size", HeadDim);
        Positive("context length", ContextLength);
        if (Heads % KvHeads != 0)
            throw new ModelFormatException(path, $"head count {Heads} is not a multiple of the key/value head count {KvHeads}");
        if (HeadDim % 2 != 0)
            throw new ModelFormatException(path, $"head size {HeadDim} is odd; RoPE needs pairs");
        if (!(NormEps > 0) || !float.IsFinite(NormEps))
            throw new ModelFormatException(path, $"RMSNorm epsilon {NormEps} must be a positive number");
        if (!(RopeTheta > 0) || !float.IsFinite(RopeTheta))
            throw new ModelFormatException(path, $"RoPE base {RopeTheta} must be a positive number");
    }
}
