namespace Tessera.Sampling;

/// <summary>
/// How the next token is chosen, with llama.cpp's meanings and defaults. A temperature of 0 (or below) is greedy.
/// <see cref="Validate"/> checks ranges and names the option at fault.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Softmax temperature; 0 means greedy (argmax). Default 0.8 as llama.cpp.</summary>
    public float Temperature { get; init; } = 0.8f;
    /// <summary>Keep only the K most likely tokens; 0 disables. Default 40.</summary>
    public int TopK { get; init; } = 40;
    /// <summary>Nucleus sampling: keep the smallest set whose probability reaches P; 1 disables. Default 0.95.</summary>
    public float TopP { get; init; } = 0.95f;
    /// <summary>Drop tokens whose probability is below MinP times the top token's; 0 disables. Default 0.05.</summary>
    public float MinP { get; init; } = 0.05f;
    /// <summary>Divide positive (multiply negative) logits of recently seen tokens by this; 1 disables.</summary>
    public float RepetitionPenalty { get; init; } = 1.0f;
    /// <summary>Subtract this times the count of a token in the recent window; 0 disables.</summary>
    public float FrequencyPenalty { get; init; }
    /// <summary>Subtract this once from every token present in the recent window; 0 disables.</summary>
    public float PresencePenalty { get; init; }
    /// <summary>How many recent tokens the penalties look at. Default 64 as llama.cpp.</summary>
    public int PenaltyWindow { get; init; } = 64;
    /// <summary>Added to the logits of chosen tokens before the draw (OpenAI's <c>logit_bias</c>, llama.cpp's
    /// <c>--logit-bias</c>): -100 in practice bans a token, +100 forces it, negative infinity bans it outright. Null or
    /// empty: none.</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }
    /// <summary>Random seed; the same seed, prompt and options give the same text. Null picks one at random.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Greedy decoding.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        if (!float.IsFinite(Temperature) || Temperature < 0) Bad("temperature", Temperature, "must be 0 or more");
        if (TopK < 0) Bad("top-k", TopK, "must be 0 (off) or more");
        if (!(TopP > 0 && TopP <= 1)) Bad("top-p", TopP, "must be in (0, 1]");
        if (!(MinP >= 0 && MinP <= 1)) Bad("min-p", MinP, "must be in [0, 1]");
        if (!(RepetitionPenalty > 0) || !float.IsFinite(RepetitionPenalty)) Bad("repeat-penalty", RepetitionPenalty, "must be positive");
        if (!float.IsFinite(FrequencyPenalty)) Bad("frequency-penalty", FrequencyPenalty, "must be a number");
        if (!float.IsFinite(PresencePenalty)) Bad("presence-penalty", PresencePenalty, "must be a number");
        if (PenaltyWindow < 0) Bad("repeat-last-n", PenaltyWindow, "must be 0 or more");
        if (LogitBias is not null)
            foreach (var (token, bias) in LogitBias)
            {
                if (token < 0) Bad("logit-bias", token, "a token id must be 0 or more");
                if (float.IsNaN(bias) || float.IsPositiveInfinity(bias)) Bad("logit-bias", $"{token}{bias:+0.##;-0.##}", "the bias must be a number (or -inf to ban the token)");
            }
    }

    private static void Bad(string name, object value, string rule) =>
        throw new ArgumentException($"--{name} {value}: {rule}", name);
}
