using System.Text.Json;

namespace Tessera.Formats.HuggingFace;

/// <summary>
/// The <c>config.json</c> of a Llama-family Hugging Face model, as plain immutable data. Defaults are
/// transformers' own (<c>num_key_value_heads</c> = heads, <c>rope_theta</c> = 10000, untied embeddings).
/// </summary>
public sealed record HfConfig
{
    /// <summary>Name of the file in a model folder.</summary>
    public const string FileName = "config.json";

    /// <summary>File the config was read from (for messages).</summary>
    public string Path { get; init; } = FileName;

    /// <summary><c>architectures</c>, e.g. <c>LlamaForCausalLM</c> (empty when absent).</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];

    /// <summary><c>model_type</c>, e.g. <c>llama</c>.</summary>
    public string ModelType { get; init; } = "";

    /// <summary><c>hidden_size</c>: the model (embedding) width.</summary>
    public int HiddenSize { get; init; }

    /// <summary><c>intermediate_size</c>: the FFN width.</summary>
    public int IntermediateSize { get; init; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    public int NumHiddenLayers { get; init; }

    /// <summary><c>num_attention_heads</c>: query heads.</summary>
    public int NumAttentionHeads { get; init; }

    /// <summary><c>num_key_value_heads</c> (GQA); equal to the query heads when absent.</summary>
    public int NumKeyValueHeads { get; init; }

    /// <summary><c>head_dim</c> when the file gives it (it may differ from hidden / heads).</summary>
    public int? HeadDim { get; init; }

    /// <summary>Size of one attention head: <see cref="HeadDim"/>, else hidden size / heads.</summary>
    public int ResolvedHeadDim => HeadDim ?? HiddenSize / NumAttentionHeads;

    /// <summary><c>rms_norm_eps</c>.</summary>
    public double RmsNormEps { get; init; }

    /// <summary><c>rope_theta</c> (also read from <c>rope_parameters</c>); 10000 when absent.</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary><c>rope_scaling</c>, or null when absent or null (or of the plain <c>default</c> type).</summary>
    public HfRopeScaling? RopeScaling { get; init; }

    /// <summary><c>max_position_embeddings</c>: the trained context length.</summary>
    public int MaxPositionEmbeddings { get; init; }

    /// <summary><c>vocab_size</c>.</summary>
    public int VocabSize { get; init; }

    /// <summary><c>tie_word_embeddings</c>: the output projection is the embedding matrix. False when absent.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary><c>bos_token_id</c> (one id or several; empty when absent or null).</summary>
    public IReadOnlyList<int> BosTokenIds { get; init; } = [];

    /// <summary><c>eos_token_id</c> (one id or several; empty when absent or null).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary><c>torch_dtype</c> (or the newer <c>dtype</c>), e.g. <c>bfloat16</c>, if given.</summary>
    public string? TorchDtype { get; init; }

    /// <summary><c>sliding_window</c>, if set (see <see cref="CheckContextLength"/>).</summary>
    public int? SlidingWindow { get; init; }

    /// <summary><c>hidden_act</c>; <c>silu</c> when absent.</summary>
    public string HiddenAct { get; init; } = "silu";

    /// <summary><c>attention_bias</c>: Q/K/V/O projections have biases. False when absent.</summary>
    public bool AttentionBias { get; init; }

    /// <summary><c>mlp_bias</c>: FFN projections have biases. False when absent.</summary>
    public bool MlpBias { get; init; }

    /// <summary>Reads <c>config.json</c> from a model folder or a file path.</summary>
    /// <exception cref="ModelFormatException">Missing file, invalid JSON, a required field missing or of the wrong
    /// type, or inconsistent sizes; the message names the file and the field.</exception>
    public static HfConfig Load(string path)
    {
        if (Directory.Exists(path)) path = System.IO.Path.Combine(path, FileName);
        if (!File.Exists(path)) throw new ModelFormatException(path, "file not found");
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException(path, $"cannot read the file: {e.Message}", e);
        }
        return Parse(json, path);
    }

    /// <summary>Parses the text of a config.json; <paramref name="path"/> is only used in messages.</summary>
    /// <exception cref="ModelFormatException">As for <see cref="Load"/>.</exception>
    public static HfConfig Parse(string json, string path = FileName)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, $"not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(path, $"is a JSON {doc.RootElement.ValueKind}, not an object");
            return FromJson(new JsonFields(doc.RootElement, path), path);
        }
    }

    private static HfConfig FromJson(JsonFields f, string path)
    {
        int heads = f.RequiredPositiveInt("num_attention_heads");
        int hidden = f.RequiredPositiveInt("hidden_size");
        int kvHeads = f.OptionalInt("num_key_value_heads") ?? heads;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw f.Invalid("num_key_value_heads", $"is {kvHeads}, which does not divide num_attention_heads ({heads})");
        int? headDim = f.OptionalInt("head_dim");
        if (headDim is <= 0) throw f.Invalid("head_dim", $"is {headDim}, but must be positive");
        if (headDim == null && hidden % heads != 0)
            throw f.Invalid("hidden_size", $"is {hidden}, not a multiple of num_attention_heads ({heads}), and there is no head_dim");
        int? slidingWindow = f.OptionalInt("sliding_window");
        if (slidingWindow is <= 0) throw f.Invalid("sliding_window", $"is {slidingWindow}, but must be positive");

        // transformers 5 moves rope_theta and the scaling type into rope_parameters; older files have them at the top.
        JsonFields? ropeParameters = f.OptionalObject("rope_parameters");
        double ropeTheta = f.OptionalDouble("rope_theta") ?? ropeParameters?.OptionalDouble("rope_theta") ?? 10000;
        if (ropeTheta <= 0) throw f.Invalid("rope_theta", $"is {ropeTheta}, but must be positive");
        HfRopeScaling? scaling = ReadRopeScaling(f.OptionalObject("rope_scaling") ?? ropeParameters);

        return new HfConfig
        {
            Path = path,
            Architectures = f.StringList("architectures"),
            ModelType = f.RequiredString("model_type"),
            HiddenSize = hidden,
            IntermediateSize = f.RequiredPositiveInt("intermediate_size"),
            NumHiddenLayers = f.RequiredPositiveInt("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            RmsNormEps = PositiveDouble(f, "rms_norm_eps"),
            RopeTheta = ropeTheta,
            RopeScaling = scaling,
            MaxPositionEmbeddings = f.RequiredPositiveInt("max_position_embeddings"),
            VocabSize = f.RequiredPositiveInt("vocab_size"),
            TieWordEmbeddings = f.OptionalBool("tie_word_embeddings") ?? false,
            BosTokenIds = f.IntOrIntList("bos_token_id"),
            EosTokenIds = f.IntOrIntList("eos_token_id"),
            TorchDtype = f.OptionalString("torch_dtype") ?? f.OptionalString("dtype"),
            SlidingWindow = slidingWindow,
            HiddenAct = f.OptionalString("hidden_act") ?? "silu",
            AttentionBias = f.OptionalBool("attention_bias") ?? false,
            MlpBias = f.OptionalBool("mlp_bias") ?? false,
        };
    }

    private static double PositiveDouble(JsonFields f, string name)
    {
        double v = f.RequiredDouble(name);
        return v > 0 ? v : throw f.Invalid(name, $"is {v}, but must be positive");
    }

    private static HfRopeScaling? ReadRopeScaling(JsonFields? s)
    {
        if (s is not { } r) return null;
        string type = r.OptionalString("rope_type") ?? r.OptionalString("type")
            ?? throw r.Invalid("rope_type", "is missing (neither rope_type nor type is given)");
        // "default" is plain RoPE: the same as no scaling at all.
        if (type == "default") return null;
        return new HfRopeScaling(type, r.OptionalDouble("factor"), r.OptionalDouble("low_freq_factor"),
            r.OptionalDouble("high_freq_factor"), r.OptionalInt("original_max_position_embeddings"), r.Object.GetRawText());
    }

    /// <summary>
    /// Checks the config allows running with <paramref name="contextLength"/> positions: Tessera runs no
    /// sliding windows for Hugging Face folders yet (GGUF files slide), so a window smaller than the context would silently change the model.
    /// </summary>
    /// <exception cref="ModelFormatException">The window is smaller than the context.</exception>
    public void CheckContextLength(int contextLength)
    {
        if (SlidingWindow is int w && w < contextLength)
            throw new ModelFormatException(Path,
                $"field 'sliding_window' is {w}, smaller than the context length {contextLength}; Tessera does not read sliding windows from Hugging Face folders yet (a GGUF conversion of the model slides)");
    }
}
