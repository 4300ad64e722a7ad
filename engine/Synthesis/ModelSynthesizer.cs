using Tessera.Formats.Gguf;
using Tessera.Quantization;

namespace Tessera.Synthesis;

/// <summary>
/// Writes a GGUF file of a Llama-architecture model at a given shape with random weights (normal, std 0.02; norm
/// weights 1), metadata as llama.cpp's converter writes it, and a tokenizer copied from another GGUF file and padded
/// with unused tokens to the shape's vocabulary. Weights are generated and quantized a few rows at a time inside the
/// writer's callbacks, so memory stays small whatever the model's size.
/// </summary>
public sealed class ModelSynthesizer
{
    /// <summary>Standard deviation of the weights: the scale of real models' matrices, so activations stay finite
    /// and far from denormals.</summary>
    public const float WeightStd = 0.02f;

    /// <summary>Spread of Qwen2's Q/K/V biases (mean 0) and of Qwen3's per-head norm weights (mean 1): large enough to
    /// move the logits well past rounding, so that dropping one would show.</summary>
    public const float BiasStd = 0.5f, HeadNormStd = 0.2f;

    private const string TokenizerPrefix = "tokenizer.ggml.";

    /// <summary>One tensor to write.</summary>
    /// <param name="Name">GGUF tensor name.</param>
    /// <param name="Dims">Extents, innermost first.</param>
    /// <param name="Type">Element type.</param>
    /// <param name="IsNorm">True for 1-D F32 vectors (RMSNorm weights: all ones; see <paramref name="Mean"/>); false
    /// for random matrices.</param>
    /// <param name="Mean">A vector's mean (1 for norms, 0 for biases).</param>
    /// <param name="Std">A vector's spread: 0 for the block norms (all ones, as before), random for Qwen's biases and
    /// per-head norms, so that a test would see them ignored.</param>
    /// <param name="Values">A vector's values when given (RoPE factors), instead of mean and spread.</param>
    public sealed record TensorPlan(string Name, long[] Dims, GgmlType Type, bool IsNorm, float Mean = 1f, float Std = 0f, float[]? Values = null)
    {
        /// <summary>Bytes in the file.</summary>
        public long ByteSize => GgmlTypeInfo.RowBytes(Type, Dims[0]) * (Dims.Length > 1 ? Dims[1] : 1);
    }

    private readonly ModelShape _shape;
    private readonly SynthType _type;
    private readonly ulong _seed;

    /// <summary>A synthesizer for <paramref name="shape"/> (validated here) written as <paramref name="type"/>.</summary>
    public ModelSynthesizer(ModelShape shape, SynthType type, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(shape);
        shape.Validate();
        _shape = shape;
        _type = type;
        _seed = seed;
        Tensors = Plan();
    }

    /// <summary>The tensors in file order, with the type each gets.</summary>
    public IReadOnlyList<TensorPlan> Tensors { get; }

    /// <summary>Bytes of tensor data (without header and padding).</summary>
    public long DataBytes => Tensors.Sum(t => t.ByteSize);

    private List<TensorPlan> Plan()
    {
        var s = _shape;
        long kv = (long)s.KvHeads * s.HeadDim;
        var list = new List<TensorPlan>();
        void Matrix(string name, string role, int layer, long cols, long rows) =>
            list.Add(new TensorPlan(name, [cols, rows], SynthTypes.TensorType(_type, role, layer, s, cols), false));
        void Norm(string name) => list.Add(new TensorPlan(name, [s.Dim], GgmlType.F32, true));
        void Vector(string name, long length, float mean, float std) => list.Add(new TensorPlan(name, [length], GgmlType.F32, true, mean, std));

        Matrix("token_embd.weight", "token_embd", -1, s.Dim, s.Vocab);
        if (s.RopeScaling == "llama3")
            list.Add(new TensorPlan("rope_freqs.weight", [s.HeadDim / 2], GgmlType.F32, true,
                Values: Model.RopeScalingFactors.Llama3(s.HeadDim, s.RopeTheta, s.RopeScale, 1, 4, OriginalContext)));
        if (s.RopeScaling == "longrope")
        {
            // Made-up factors of LongRoPE's kind: short ones near 1, long ones growing to about 40.
            int n = s.HeadDim / 2;
            list.Add(new TensorPlan("rope_factors_long.weight", [n], GgmlType.F32, true,
                Values: [.. Enumerable.Range(0, n).Select(i => 1f + 40f * i * i / (n * n))]));
            list.Add(new TensorPlan("rope_factors_short.weight", [n], GgmlType.F32, true,
                Values: [.. Enumerable.Range(0, n).Select(i => 1f + 0.05f * i)]));
        }
        bool phi3 = s.Architecture == "phi3";
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"blk.{l}.";
            Norm(p + "attn_norm.weight");
            if (phi3)
            {
                // Phi-3's fused projections: Q, K, V rows in one tensor; gate and up rows in ffn_up.
                Matrix(p + "attn_qkv.weight", "attn_qkv", l, s.Dim, s.QDim + 2 * kv);
                Matrix(p + "attn_output.weight", "attn_output", l, s.QDim, s.Dim);
                Norm(p + "ffn_norm.weight");
                Matrix(p + "ffn_up.weight", "ffn_up", l, s.Dim, 2L * s.Ffn);
                Matrix(p + "ffn_down.weight", "ffn_down", l, s.Ffn, s.Dim);
                continue;
            }
            Matrix(p + "attn_q.weight", "attn_q", l, s.Dim, s.QDim);
            if (s.Architecture == "qwen2") Vector(p + "attn_q.bias", s.QDim, 0f, BiasStd);
            Matrix(p + "attn_k.weight", "attn_k", l, s.Dim, kv);
            if (s.Architecture == "qwen2") Vector(p + "attn_k.bias", kv, 0f, BiasStd);
            Matrix(p + "attn_v.weight", "attn_v", l, s.Dim, kv);
            if (s.Architecture == "qwen2") Vector(p + "attn_v.bias", kv, 0f, BiasStd);
            Matrix(p + "attn_output.weight", "attn_output", l, s.QDim, s.Dim);
            if (s.Architecture is "qwen3" or "gemma3")
            {
                Vector(p + "attn_q_norm.weight", s.HeadDim, 1f, HeadNormStd);
                Vector(p + "attn_k_norm.weight", s.HeadDim, 1f, HeadNormStd);
            }
            if (s.IsGemma) Vector(p + "post_attention_norm.weight", s.Dim, 1f, HeadNormStd);
            Norm(p + "ffn_norm.weight");
            Matrix(p + "ffn_gate.weight", "ffn_gate", l, s.Dim, s.Ffn);
            Matrix(p + "ffn_up.weight", "ffn_up", l, s.Dim, s.Ffn);
            Matrix(p + "ffn_down.weight", "ffn_down", l, s.Ffn, s.Dim);
            if (s.IsGemma) Vector(p + "post_ffw_norm.weight", s.Dim, 1f, HeadNormStd);
        }
        Norm("output_norm.weight");
        if (!s.Tied) Matrix("output.weight", "output", -1, s.Dim, s.Vocab);
        return list;
    }

    private int OriginalContext => _shape.RopeOriginalContext > 0 ? _shape.RopeOriginalContext : _shape.Context;

    /// <summary>Builds the writer: metadata, the tokenizer of <paramref name="tokenizerSource"/> padded to the
    /// vocabulary, and a callback per tensor that generates it. <paramref name="progress"/> gets (data bytes written,
    /// total) after every chunk, from the writing thread.</summary>
    public GgufWriter CreateWriter(GgufFile tokenizerSource, Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizerSource);
        var s = _shape;
        var w = new GgufWriter();
        // Key order as llama.cpp's convert_hf_to_gguf.py writes a Llama model.
        string a = s.Architecture;
        w.Set("general.architecture", GgufValue.Of(a));
        w.Set("general.type", GgufValue.Of("model"));
        w.Set("general.name", GgufValue.Of($"{s.Name} (random weights)"));
        w.Set($"{a}.block_count", GgufValue.Of((uint)s.Layers));
        w.Set($"{a}.context_length", GgufValue.Of((uint)s.Context));
        w.Set($"{a}.embedding_length", GgufValue.Of((uint)s.Dim));
        w.Set($"{a}.feed_forward_length", GgufValue.Of((uint)s.Ffn));
        w.Set($"{a}.attention.head_count", GgufValue.Of((uint)s.Heads));
        w.Set($"{a}.attention.head_count_kv", GgufValue.Of((uint)s.KvHeads));
        w.Set($"{a}.rope.freq_base", GgufValue.Of(s.RopeTheta));
        w.Set($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Of(s.NormEps));
        if (s.SlidingWindow > 0) w.Set($"{a}.attention.sliding_window", GgufValue.Of((uint)s.SlidingWindow));
        if (s.RopeScaling == "linear")
        {
            w.Set($"{a}.rope.scaling.type", GgufValue.Of("linear"));
            w.Set($"{a}.rope.scaling.factor", GgufValue.Of(s.RopeScale));
        }
        if (s.RopeScaling == "longrope")
        {
            // As Phi-3's converter: the original context and the attention factor; the factors are tensors.
            w.Set($"{a}.rope.scaling.original_context_length", GgufValue.Of((uint)OriginalContext));
            w.Set($"{a}.rope.scaling.attn_factor", GgufValue.Of(Model.RopeScalingFactors.LongRopeAttnFactor(s.Context, OriginalContext)));
        }
        if (a == "gemma2")
        {
            w.Set($"{a}.attn_logit_softcapping", GgufValue.Of(s.AttnSoftCap ?? 50f));
            w.Set($"{a}.final_logit_softcapping", GgufValue.Of(s.FinalSoftCap ?? 30f));
        }
        else if (s.FinalSoftCap is { } cap) w.Set($"{a}.final_logit_softcapping", GgufValue.Of(cap));
        if (s.HeadSize is not null)
        {
            w.Set($"{a}.attention.key_length", GgufValue.Of((uint)s.HeadDim));
            w.Set($"{a}.attention.value_length", GgufValue.Of((uint)s.HeadDim));
        }
        w.Set("general.file_type", GgufValue.Of(SynthTypes.FileType(_type)));
        w.Set($"{a}.vocab_size", GgufValue.Of((uint)s.Vocab));
        w.Set($"{a}.rope.dimension_count", GgufValue.Of((uint)s.HeadDim));
        foreach (var (key, value) in PaddedTokenizer(tokenizerSource, s.Vocab, a == "phi3" ? Phi3AddedTokens : [])) w.Set(key, value);
        w.Set("general.quantization_version", GgufValue.Of(2u));

        long total = DataBytes, done = 0;
        var buffers = new ChunkBuffers();
        for (int i = 0; i < Tensors.Count; i++)
        {
            var t = Tensors[i];
            int index = i;
            w.AddTensor(t.Name, t.Type, t.Dims, stream =>
            {
                WriteTensor(t, index, stream, buffers, written =>
                {
                    done += written;
                    progress?.Invoke(done, total);
                });
            });
        }
        return w;
    }

    /// <summary>Writes the whole file (through a temporary file, see <see cref="GgufWriter.WriteFile"/>).</summary>
    public void WriteFile(string path, GgufFile tokenizerSource, Action<long, long>? progress = null) =>
        CreateWriter(tokenizerSource, progress).WriteFile(path);

    /// <summary>Buffers reused across chunks and tensors (one set per writer: the writer calls back on one thread).</summary>
    private sealed class ChunkBuffers
    {
        public float[] Floats = [];
        public byte[] Bytes = [];
    }

    private const int ChunkFloats = 1 << 20;

    private void WriteTensor(TensorPlan t, int index, Stream stream, ChunkBuffers buf, Action<long> wrote)
    {
        int cols = (int)t.Dims[0];
        long rows = t.Dims.Length > 1 ? t.Dims[1] : 1;
        if (t.IsNorm)
        {
            var values = t.Values ?? new float[cols];
            if (t.Values == null)
            {
                if (t.Std > 0) NormalRandom.FillRow(_seed, index, 0, t.Std, values, new float[cols]);
                for (int i = 0; i < cols; i++) values[i] += t.Mean;
            }
            var bytes = new byte[cols * 4];
            WeightQuantizer.QuantizeRow(GgmlType.F32, values, bytes);
            stream.Write(bytes);
            wrote(bytes.Length);
            return;
        }
        int rowBytes = (int)GgmlTypeInfo.RowBytes(t.Type, cols);
        int chunkRows = (int)Math.Max(1, Math.Min(rows, ChunkFloats / cols));
        if (buf.Floats.Length < chunkRows * cols) buf.Floats = new float[chunkRows * cols];
        if (buf.Bytes.Length < chunkRows * rowBytes) buf.Bytes = new byte[chunkRows * rowBytes];
        float[] floats = buf.Floats;
        byte[] bytesOut = buf.Bytes;
        for (long r0 = 0; r0 < rows; r0 += chunkRows)
        {
            int n = (int)Math.Min(chunkRows, rows - r0);
            // Rows are independent (own random stream, own blocks), so the chunk is split across cores.
            Parallel.For(0, n, () => new float[cols], (r, _, scratch) =>
            {
                Span<float> x = floats.AsSpan(r * cols, cols);
                NormalRandom.FillRow(_seed, index, r0 + r, WeightStd, x, scratch);
                WeightQuantizer.QuantizeRow(t.Type, x, bytesOut.AsSpan(r * rowBytes, rowBytes));
                return scratch;
            }, _ => { });
            stream.Write(bytesOut, 0, n * rowBytes);
            wrote((long)n * rowBytes);
        }
    }

    /// <summary>The <c>tokenizer.ggml.*</c> keys of <paramref name="source"/>, with the per-token arrays (tokens,
    /// scores, token_type) extended to <paramref name="vocab"/> entries by unused tokens <c>&lt;pad_N&gt;</c>
    /// (N = the token id; type 5 = unused, score 0), as llama.cpp's converter pads a vocabulary.</summary>
    internal static List<KeyValuePair<string, GgufValue>> PaddedTokenizer(GgufFile source, int vocab, string[]? added = null)
    {
        added ??= [];
        string[] tokens = source.TryGetString(TokenizerPrefix + "model", out _) && source.Contains(TokenizerPrefix + "tokens")
            ? source.GetStringArray(TokenizerPrefix + "tokens")
            : throw new ArgumentException($"{source.Path}: has no tokenizer (tokenizer.ggml.model and tokenizer.ggml.tokens)");
        int n = tokens.Length;
        if (n > vocab)
            throw new ArgumentException($"{source.Path}: its tokenizer has {n} tokens, more than the shape's vocabulary of {vocab}");
        var known = new HashSet<string>(tokens, StringComparer.Ordinal);
        var result = new List<KeyValuePair<string, GgufValue>>();
        foreach (var (key, value) in source.Metadata.Where(kv => kv.Key.StartsWith(TokenizerPrefix, StringComparison.Ordinal)))
        {
            GgufValue v = value;
            switch (key[TokenizerPrefix.Length..])
            {
                case "tokens":
                    var padded = new string[vocab];
                    tokens.CopyTo(padded, 0);
                    if (n + added.Length > vocab)
                        throw new ArgumentException($"{source.Path}: its {n} tokens and the architecture's {added.Length} added ones pass the shape's vocabulary of {vocab}");
                    for (int i = n; i < vocab; i++)
                    {
                        padded[i] = i - n < added.Length ? added[i - n] : $"<pad_{i}>";
                        if (known.Contains(padded[i]))
                            throw new ArgumentException($"{source.Path}: its tokenizer already has a token '{padded[i]}', which padding would duplicate");
                    }
                    v = GgufValue.Of(padded);
                    break;
                case "scores":
                    v = source.TryGetFloatArray(key, out float[] scores) && scores.Length == n
                        ? GgufValue.Of(Pad(scores, vocab, 0f))
                        : throw new ArgumentException($"{source.Path}: {key} should be {n} floats, one per token");
                    break;
                case "token_type":
                    v = source.TryGetInt32Array(key, out int[] types) && types.Length == n
                        ? GgufValue.Of(Pad(types, vocab, 5, added.Length, 3))
                        : throw new ArgumentException($"{source.Path}: {key} should be {n} integers, one per token");
                    break;
            }
            result.Add(new(key, v));
        }
        return result;
    }

    private static T[] Pad<T>(T[] a, int length, T fill, int firstCount = 0, T first = default!)
    {
        var r = new T[length];
        a.CopyTo(r, 0);
        r.AsSpan(a.Length).Fill(fill);
        r.AsSpan(a.Length, firstCount).Fill(first);
        return r;
    }

    // Phi-3's added control tokens, in its order after the Llama 2 vocabulary, and Llama 2's own start and end tokens:
    // llama.cpp's vocabulary loader looks some up by text when a model's name says Phi-3 (to set their strip
    // attributes), so a synthesized one carries them too.
    private static readonly string[] Phi3AddedTokens =
    [
        "<s>", "</s>",
        "<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>", "<|placeholder4|>",
        "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>", "<|user|>",
    ];
}
