namespace Tessera.Api;

/// <summary>How an <see cref="InferenceEngine"/> is set up. <see cref="Validate"/> names the option at fault.</summary>
public sealed record EngineOptions
{
    /// <summary>Most tokens (prompt and generated) one request may hold; 0 means the model's context, at most 4096.</summary>
    public int ContextSize { get; init; }

    /// <summary>Most requests generating at once (continuous batching); more wait in the queue. Default 16.</summary>
    public int MaxSequences { get; init; } = 16;

    /// <summary>Most tokens, all requests together, in one forward step: each running request's next token, then
    /// prompt chunks filling the rest. At least <see cref="MaxSequences"/>. Default 256.</summary>
    public int MaxTokensPerStep { get; init; } = 256;

    /// <summary>Blocks in the paged KV cache; 0 (the default) sizes it for <see cref="MaxSequences"/> full contexts,
    /// capped at <see cref="KvCacheBytes"/> and never below one full context.</summary>
    public int KvBlocks { get; init; }

    /// <summary>When <see cref="KvBlocks"/> is 0: the most memory the KV cache may take. Default 1 GiB.</summary>
    public long KvCacheBytes { get; init; } = 1L << 30;

    /// <summary>Positions per KV block, a power of two. Default 16.</summary>
    public int KvBlockSize { get; init; } = 16;

    /// <summary>Throws <see cref="ArgumentException"/> for an out-of-range option.</summary>
    public void Validate()
    {
        if (ContextSize < 0) throw new ArgumentException($"ContextSize {ContextSize}: must be 0 (the model's) or positive", nameof(ContextSize));
        if (MaxSequences < 1) throw new ArgumentException($"MaxSequences {MaxSequences}: must be 1 or more", nameof(MaxSequences));
        if (MaxTokensPerStep < MaxSequences)
            throw new ArgumentException($"MaxTokensPerStep {MaxTokensPerStep}: must be at least MaxSequences ({MaxSequences}), so every running request can decode each step", nameof(MaxTokensPerStep));
        if (KvBlocks < 0) throw new ArgumentException($"KvBlocks {KvBlocks}: must be 0 (automatic) or positive", nameof(KvBlocks));
        if (KvCacheBytes <= 0) throw new ArgumentException($"KvCacheBytes {KvCacheBytes}: must be positive", nameof(KvCacheBytes));
        if (KvBlockSize < 1 || KvBlockSize > 1024 || (KvBlockSize & (KvBlockSize - 1)) != 0)
            throw new ArgumentException($"KvBlockSize {KvBlockSize}: must be a power of two from 1 to 1024", nameof(KvBlockSize));
    }
}
