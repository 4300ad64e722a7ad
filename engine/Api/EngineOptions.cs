namespace Tessera.Api;

/// <summary>How an <see cref="InferenceEngine"/> is set up. <see cref="Validate"/> names the option at fault.</summary>
public sealed record EngineOptions
{
    /// <summary>Most tokens (prompt and generated) one request may hold; 0 means the model's context, at most 4096.</summary>
    public int ContextSize { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for an out-of-range option.</summary>
    public void Validate()
    {
        if (ContextSize < 0) throw new ArgumentException($"ContextSize {ContextSize}: must be 0 (the model's) or positive", nameof(ContextSize));
    }
}
