namespace Tessera.Kv;

/// <summary>How a <see cref="KvBudget"/> chooses the rows it drops.</summary>
public enum KvPolicy
{
    /// <summary>StreamingLLM: the sinks plus the most recent positions.</summary>
    Window,
    /// <summary>Heavy-Hitter Oracle: sinks, a recent window of half the budget, and the positions that received the
    /// most attention so far.</summary>
    H2O,
    /// <summary>Keyformer: a recent window of 30% of the budget and the positions with the largest accumulated Gumbel
    /// softmax of the attention logits, τ annealed from 1 to 2 over the generation.</summary>
    Keyformer,
    /// <summary>SnapKV: at the end of a prompt, the attention of its last 32 queries, width-5 average pooled, picks the
    /// positions kept beside that window; afterwards decode rows add their attention (as H2O).</summary>
    SnapKv,
}

/// <summary>A cap on the positions one sequence's KV cache holds (<c>--kv-budget</c>, <c>--kv-policy</c>,
/// <c>--kv-sinks</c>): no row attends to more than <see cref="Budget"/> positions, itself included, so between steps
/// the cache holds at most Budget − 1. Kept positions keep their RoPE positions; the next token's position keeps
/// counting.</summary>
public sealed record KvBudgetOptions
{
    /// <summary>Most positions a row attends to (itself included).</summary>
    public required int Budget { get; init; }
    /// <summary>Which rows go.</summary>
    public KvPolicy Policy { get; init; } = KvPolicy.H2O;
    /// <summary>The first positions every policy keeps (StreamingLLM's attention sinks; 0 turns them off).</summary>
    public int Sinks { get; init; } = 4;
    /// <summary>SnapKV's observation window (the last prompt queries whose attention ranks the rest, kept themselves).</summary>
    public int SnapWindow { get; init; } = 32;
    /// <summary>Seed of Keyformer's Gumbel noise.</summary>
    public ulong Seed { get; init; } = 0x5eed;

    /// <summary>The policy of a name users pass: window, h2o, keyformer, snapkv.</summary>
    /// <exception cref="ArgumentException">No policy has that name.</exception>
    public static KvPolicy ParsePolicy(string name) => name.ToLowerInvariant() switch
    {
        "window" or "streamingllm" => KvPolicy.Window,
        "h2o" => KvPolicy.H2O,
        "keyformer" => KvPolicy.Keyformer,
        "snapkv" => KvPolicy.SnapKv,
        _ => throw new ArgumentException($"--kv-policy '{name}': unknown (window, h2o, keyformer, snapkv)"),
    };

    /// <summary>The name users pass for <paramref name="policy"/>.</summary>
    public static string NameOf(KvPolicy policy) => policy switch
    {
        KvPolicy.Window => "window",
        KvPolicy.H2O => "h2o",
        KvPolicy.Keyformer => "keyformer",
        _ => "snapkv",
    };

    /// <summary>Checks the numbers.</summary>
    /// <exception cref="ArgumentException">The budget leaves no room beside the sinks, or a count is negative.</exception>
    public void Validate()
    {
        if (Sinks < 0) throw new ArgumentException($"--kv-sinks {Sinks}: must not be negative");
        if (Budget < Sinks + 1) throw new ArgumentException($"--kv-budget {Budget}: must be at least --kv-sinks {Sinks} + 1 (the sinks and the row itself)");
        if (SnapWindow < 1) throw new ArgumentException($"SnapKV window {SnapWindow}: must be positive");
    }

    /// <summary>Whether the policy ranks positions by attention (every one but the window).</summary>
    public bool NeedsAttentionScores => Policy != KvPolicy.Window;

    /// <summary>Checks that <paramref name="backend"/> can run this budget.</summary>
    /// <exception cref="ArgumentException">The policy ranks by attention and the backend does not compute it.</exception>
    public void CheckBackend(Backends.IBackend backend)
    {
        if (NeedsAttentionScores && !backend.ComputesAttentionScores)
            throw new ArgumentException($"--kv-policy {NameOf(Policy)} ranks positions by attention, which the {backend.Name} backend does not compute; use --kv-policy window or --backend cpu", nameof(Policy));
    }

    /// <summary>Checks that a model of <paramref name="config"/> can run under a budget.</summary>
    /// <exception cref="ArgumentException">Its attention has a sliding window or a soft cap (Gemma): the window counts
    /// cache positions, which eviction renumbers, and the scores the policies rank by are plain attention's.</exception>
    public void CheckModel(Model.LlamaConfig config)
    {
        if (config.HasAttentionVariants)
            throw new ArgumentException($"--kv-budget: not supported for {config.Architecture} models yet (their sliding-window or soft-capped attention)", nameof(Budget));
    }

    /// <summary>A fresh policy object for one sequence.</summary>
    public IKvEvictionPolicy CreatePolicy() => Policy switch
    {
        KvPolicy.Window => new Policies.WindowPolicy(),
        KvPolicy.H2O => new Policies.H2OPolicy(),
        KvPolicy.Keyformer => new Policies.KeyformerPolicy(),
        _ => new Policies.SnapKvPolicy(SnapWindow),
    };
}
