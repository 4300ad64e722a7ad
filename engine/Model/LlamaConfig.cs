using Tessera.Formats;
using Tessera.Formats.Gguf;
using Tessera.Formats.HuggingFace;

namespace Tessera.Model;

/// <summary>
/// Hyper-parameters of a Llama-family decoder, from GGUF metadata or a Hugging Face <c>config.json</c>: Llama and
/// Mistral, and the families that differ from it only in what the flags below say (Qwen2: biases on Q, K and V;
/// Qwen3: RMSNorm on each head of Q and K; Gemma 2 and 3: scaled embeddings, GeGLU, norms after attention and after the
/// feed-forward, soft caps, sliding-window layers with a RoPE base of their own; Phi-3: fused QKV and gate/up tensors,
/// LongRoPE factors), with RoPE's frequency scaling (Llama 3.1's per-pair factors, linear scaling). Immutable; <see cref="Validate"/>
/// runs in the factories, so every instance is consistent.
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

    /// <summary>The embeddings are multiplied by this (Gemma: √dim); 1 for the others.</summary>
    public float EmbeddingScale { get; init; } = 1f;
    /// <summary>The feed-forward's gated activation: SiLU (SwiGLU) or Gemma's tanh GELU (GeGLU).</summary>
    public FfnActivation Activation { get; init; } = FfnActivation.Silu;
    /// <summary>RMSNorm on the attention output and on the feed-forward output before each residual add
    /// (<c>post_attention_norm</c>, <c>post_ffw_norm</c>; Gemma).</summary>
    public bool PostNorms { get; init; }
    /// <summary>Factor on q·k; 0 for 1/√head_dim (Gemma's largest sizes use 1/√(dim / heads)).</summary>
    public float AttentionScale { get; init; }
    /// <summary>Soft cap of the attention scores, s = cap · tanh(s / cap) (Gemma 2: 50); 0 for none.</summary>
    public float AttentionSoftCap { get; init; }
    /// <summary>Soft cap of the final logits (Gemma 2: 30); 0 for none.</summary>
    public float FinalSoftCap { get; init; }
    /// <summary>Keys a sliding-window layer's query sees, its own included (Gemma 2: 4096, Gemma 3: 512–1024,
    /// Mistral 7B v0.1: 4096); 0 when no layer slides.</summary>
    public int SlidingWindow { get; init; }
    /// <summary>Which layers slide: 0 for all; p for all but every p-th (layer l slides when l mod p &lt; p − 1:
    /// Gemma 2's alternation is 2, Gemma 3's five local to one global is 6), as llama.cpp's swa pattern.</summary>
    public int SlidingWindowPeriod { get; init; }
    /// <summary>RoPE base of the sliding-window layers when it differs from <see cref="RopeTheta"/> (Gemma 3: 10000); 0
    /// for the same.</summary>
    public float RopeThetaSliding { get; init; }

    /// <summary>RoPE's linear frequency scale: 1/factor of a <c>rope.scaling.type = linear</c> model (Gemma 3 4B+ on its
    /// global layers); 1 for none.</summary>
    public float RopeFreqScale { get; init; } = 1f;
    /// <summary>Multiplies RoPE's cos and sin (Phi-3's LongRoPE <c>rope.scaling.attn_factor</c>); 1 for none.</summary>
    public float RopeAttnFactor { get; init; } = 1f;
    /// <summary>The context RoPE was trained at before extension (<c>rope.scaling.original_context_length</c>); 0 for
    /// <see cref="ContextLength"/>. A model with LongRoPE factors uses the long ones when a sequence's context exceeds
    /// it, as llama.cpp chooses them (by the context, not the current length).</summary>
    public int RopeOriginalContext { get; init; }

    /// <summary>Dimensions of a head RoPE rotates (<c>rope.dimension_count</c>); 0 for all. Fewer than the head size is
    /// refused when the weights load (after their shapes, so a wrong embedding length is named at its tensor).</summary>
    public int RopeDimensions { get; init; }

    /// <summary>The architectures Tessera runs, as GGUF's <c>general.architecture</c> names them.</summary>
    public static IReadOnlyList<string> Architectures { get; } = ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"];

    /// <summary>The linear RoPE scale of layer <paramref name="layer"/>: Gemma 3's sliding layers never scale.</summary>
    public float RopeFreqScaleOf(int layer) => Architecture == "gemma3" && IsSliding(layer) ? 1f : RopeFreqScale;

    /// <summary>Whether a sequence context of <paramref name="contextPerSequence"/> positions takes LongRoPE's long
    /// factors (when the model has them).</summary>
    public bool UsesLongRopeFactors(int contextPerSequence) =>
        contextPerSequence > (RopeOriginalContext > 0 ? RopeOriginalContext : ContextLength);

    /// <summary>Whether layer <paramref name="layer"/> attends through the sliding window.</summary>
    public bool IsSliding(int layer) =>
        SlidingWindow > 0 && (SlidingWindowPeriod == 0 || layer % SlidingWindowPeriod < SlidingWindowPeriod - 1);

    /// <summary>The attention op's variant for layer <paramref name="layer"/>: scale, soft cap, window.</summary>
    public Backends.AttentionVariant AttentionOf(int layer) =>
        new(AttentionScale, AttentionSoftCap, IsSliding(layer) ? SlidingWindow : 0);

    /// <summary>The RoPE base of layer <paramref name="layer"/>.</summary>
    public float RopeThetaOf(int layer) => IsSliding(layer) && RopeThetaSliding > 0 ? RopeThetaSliding : RopeTheta;

    /// <summary>Whether attention departs from plain causal softmax somewhere (a window or a soft cap): the KV budgets
    /// and prompt pruning, which rank and drop cache rows by plain attention, refuse such models.</summary>
    public bool HasAttentionVariants => SlidingWindow > 0 || AttentionSoftCap > 0 || AttentionScale > 0;

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
        bool gemma = arch is "gemma2" or "gemma3";
        bool phi3 = arch == "phi3";
        int dim = (int)f.GetUInt32($"{arch}.embedding_length");
        int heads = (int)f.GetUInt32($"{arch}.attention.head_count");
        int kvHeads = f.TryGetUInt32($"{arch}.attention.head_count_kv", out uint kv) ? (int)kv : heads;
        int headDim = f.TryGetUInt32($"{arch}.attention.key_length", out uint kl) ? (int)kl : heads > 0 ? dim / heads : 0;
        // Sliding windows: Gemma 2 always slides (4096 unless the file says), every other layer; Gemma 3 when the file
        // gives a window, five layers of six; a Llama/Mistral file that declares one slides on every layer.
        int window = f.TryGetUInt32($"{arch}.attention.sliding_window", out uint sw) ? (int)sw : arch == "gemma2" ? 4096 : 0;
        // Phi-3's converted files give a window that llama.cpp ignores (its converters misstate the pattern); so do we.
        if (phi3) window = 0;
        // A Llama/Mistral/Qwen window as long as the context slides nothing: no variant (KV budgets stay possible).
        int context = (int)f.GetUInt32($"{arch}.context_length");
        if (!gemma && window >= context) window = 0;
        int period = arch switch { "gemma2" => 2, "gemma3" => 6, _ => 0 };
        // A period only: a per-layer array (newer converters may write one) is refused by the reader, naming the key.
        if (f.TryGetUInt32($"{arch}.attention.sliding_window_pattern", out uint pv)) period = (int)pv;
        if (gemma && f.FindTensor("rope_freqs.weight") != null) throw new ModelFormatException(f.Path, "rope_freqs: per-dimension RoPE factors are not supported for gemma");
        // llama.cpp's reading: the type defaults to linear, whose factor (rope.scaling.factor, or the older
        // rope.scale_linear) divides every angle; none ignores the factor; longrope (Phi-3) keeps its factors in tensors.
        string scaling = f.TryGetString($"{arch}.rope.scaling.type", out string st) ? st : "linear";
        if (scaling is not ("" or "none" or "linear" or "longrope"))
            throw new ModelFormatException(f.Path, $"{arch}.rope.scaling.type = '{scaling}': only linear, longrope (Phi-3) and per-dimension factors (rope_freqs) are supported");
        float ropeFactor = f.TryGetFloat($"{arch}.rope.scaling.factor", out float rf) ? rf : f.TryGetFloat($"{arch}.rope.scale_linear", out float rl) ? rl : 0f;
        float freqScale = scaling is "" or "none" || ropeFactor == 0f ? 1f : 1f / ropeFactor;
        var tok = f.FindTensor("token_embd.weight") ?? throw new ModelFormatException(f.Path, "tensor 'token_embd.weight' is missing");
        int vocab = f.TryGetUInt32($"{arch}.vocab_size", out uint vs) ? (int)vs : (int)tok.RowCount;
        int layers = (int)f.GetUInt32($"{arch}.block_count");
        float theta = f.TryGetFloat($"{arch}.rope.freq_base", out float th) ? th : 10000f;
        float Key(string key, float dflt) => f.TryGetFloat($"{arch}.{key}", out float v) ? v : dflt;
        var config = new LlamaConfig
        {
            Architecture = arch,
            VocabSize = vocab,
            Dim = dim,
            FfnDim = (int)f.GetUInt32($"{arch}.feed_forward_length"),
            Layers = layers,
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim,
            NormEps = f.TryGetFloat($"{arch}.attention.layer_norm_rms_epsilon", out float eps) ? eps : 1e-5f,
            RopeTheta = theta,
            RopeLayout = qwen || gemma || phi3 ? RopeLayout.RotateHalf : RopeLayout.AdjacentPairs,
            ContextLength = (int)f.GetUInt32($"{arch}.context_length"),
            // Gemma 2 always projects with the embedding table (llama.cpp ignores an output.weight there).
            TiedEmbeddings = arch == "gemma2" || f.FindTensor("output.weight") == null,
            AttentionBias = arch == "qwen2",
            QkNorm = arch is "qwen3" or "gemma3",
            EmbeddingScale = gemma ? MathF.Sqrt(dim) : 1f,
            Activation = gemma ? FfnActivation.GeluTanh : FfnActivation.Silu,
            PostNorms = gemma,
            AttentionScale = gemma ? GemmaAttentionScale(arch, layers, dim, heads) : 0f,
            // The caps and the sliding layers' RoPE base are Gemma keys; llama.cpp reads them for Gemma only (and
            // hard-codes Gemma 3's 10000).
            AttentionSoftCap = arch == "gemma2" ? Key("attn_logit_softcapping", 50f) : 0f,
            FinalSoftCap = gemma ? Key("final_logit_softcapping", arch == "gemma2" ? 30f : 0f) : 0f,
            SlidingWindow = window,
            SlidingWindowPeriod = period,
            RopeThetaSliding = window == 0 ? 0f : arch == "gemma3" ? 10000f : arch == "gemma2" ? Key("rope.freq_base_swa", 0f) : 0f,
            RopeFreqScale = freqScale,
            RopeAttnFactor = Key("rope.scaling.attn_factor", 1f),
            RopeOriginalContext = f.TryGetUInt32($"{arch}.rope.scaling.original_context_length", out uint oc) ? (int)oc : 0,
            RopeDimensions = f.TryGetUInt32($"{arch}.rope.dimension_count", out uint ropeDims) ? (int)ropeDims : 0,
        };
        config.Validate(f.Path);
        return config;
    }

    // Gemma scales queries by 1/√query_pre_attn_scalar, which GGUF does not store: llama.cpp takes it to be the head
    // size except for the 27B models (Gemma 2: 46 layers, Gemma 3: 62), whose scalar is dim / heads. So do we.
    private static float GemmaAttentionScale(string arch, int layers, int dim, int heads) =>
        (arch == "gemma2" && layers == 46) || (arch == "gemma3" && layers == 62) ? 1.0f / MathF.Sqrt(dim / heads) : 0f;

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
        if (!(RopeThetaSliding >= 0) || !float.IsFinite(RopeThetaSliding))
            throw new ModelFormatException(path, $"RoPE base of the sliding layers {RopeThetaSliding} must be a number, 0 or more");
        if (!(RopeFreqScale > 0) || !float.IsFinite(RopeFreqScale))
            throw new ModelFormatException(path, $"RoPE frequency scale {RopeFreqScale} (1 / rope scaling factor) must be a positive number");
        if (!(RopeAttnFactor > 0) || !float.IsFinite(RopeAttnFactor))
            throw new ModelFormatException(path, $"RoPE attention factor {RopeAttnFactor} must be a positive number");
        if (RopeOriginalContext < 0)
            throw new ModelFormatException(path, $"RoPE original context {RopeOriginalContext} must not be negative");
        if (SlidingWindow < 0 || SlidingWindowPeriod < 0)
            throw new ModelFormatException(path, $"sliding window {SlidingWindow} (period {SlidingWindowPeriod}) must not be negative");
        if (!(AttentionSoftCap >= 0) || !(FinalSoftCap >= 0) || !float.IsFinite(AttentionSoftCap) || !float.IsFinite(FinalSoftCap))
            throw new ModelFormatException(path, $"soft caps {AttentionSoftCap} (attention) and {FinalSoftCap} (logits) must be numbers, 0 or more");
    }
}

/// <summary>The gated activation of the feed-forward network.</summary>
public enum FfnActivation
{
    /// <summary>silu(gate) · up (SwiGLU: Llama, Qwen, Mistral).</summary>
    Silu,
    /// <summary>gelu_tanh(gate) · up (GeGLU: Gemma).</summary>
    GeluTanh,
}
