using Tessera.Backends;

namespace Tessera.Kv;

/// <summary>
/// One KV eviction policy (StreamingLLM's window, H2O, Keyformer, SnapKV): what attention it needs to see, how it
/// turns that into a score per cached row, and which rows it keeps when the cache is over its budget. One small class
/// each, behind this interface; <see cref="KvBudget"/> does the bookkeeping and the moving.
/// </summary>
public interface IKvEvictionPolicy
{
    /// <summary>The name users pass (<c>--kv-policy</c>).</summary>
    string Name { get; }

    /// <summary>The first of a step's <paramref name="rows"/> rows whose attention the policy needs, or -1 for none
    /// (then attention computes nothing extra).</summary>
    int ScoreFrom(int rows);

    /// <summary>What the scored rows accumulate (probabilities, or Keyformer's Gumbel softmax).</summary>
    AttentionScoreKind Kind => AttentionScoreKind.Probability;

    /// <summary>Keyformer's τ after <paramref name="step"/> generated positions of <paramref name="horizon"/>; 1 otherwise.</summary>
    float Temperature(int step, int horizon) => 1f;

    /// <summary>After a step of <paramref name="rows"/> rows: updates each cached row's score from what the scored rows
    /// gave it (<paramref name="received"/>, one value per cached row, empty when nothing was scored).</summary>
    void Observe(KvBudget cache, ReadOnlySpan<float> received, int rows);

    /// <summary>How many of the <paramref name="keep"/> rows that stay are the most recent ones (the rest, beyond the
    /// sinks, are chosen by score).</summary>
    int RecentWindow(int keep);

    /// <summary>The score rows compete by outside the sinks and the recent window, for the rows in
    /// <paramref name="byPosition"/> (cache rows in position order), written to <paramref name="scores"/>.</summary>
    void RankScores(KvBudget cache, ReadOnlySpan<int> byPosition, Span<float> scores);
}
