namespace Tessera.Formats.HuggingFace;

/// <summary>
/// The <c>rope_scaling</c> of a config.json as written: the type (<c>rope_type</c>, or the older <c>type</c>) and
/// the factors Llama-family types use. Whether a type is supported is decided by the model, not here.
/// </summary>
/// <param name="Type">e.g. <c>llama3</c>, <c>linear</c>, <c>dynamic</c>, <c>yarn</c>.</param>
/// <param name="Factor"><c>factor</c>, if present.</param>
/// <param name="LowFreqFactor"><c>low_freq_factor</c> (llama3), if present.</param>
/// <param name="HighFreqFactor"><c>high_freq_factor</c> (llama3), if present.</param>
/// <param name="OriginalMaxPositionEmbeddings"><c>original_max_position_embeddings</c>, if present.</param>
/// <param name="RawJson">The whole object as JSON text, for the fields not modelled here.</param>
public sealed record HfRopeScaling(
    string Type,
    double? Factor,
    double? LowFreqFactor,
    double? HighFreqFactor,
    int? OriginalMaxPositionEmbeddings,
    string RawJson);
