using Tessera.Backends;

namespace Tessera.Kv.Policies;

/// <summary>Keyformer (Adnan et al. 2024): a position's score is f(x_i) = exp((x_i + g_i)/τ) / Σ_j exp((x_j + g_j)/τ)
/// over the raw attention logits with Gumbel noise, summed over heads, layers and steps; τ goes from 1 to 2 over the
/// generation; 30% of the budget is the recent window (the reference's split), the rest the top-scored keys.</summary>
public sealed class KeyformerPolicy : IKvEvictionPolicy
{
    /// <inheritdoc/>
    public string Name => "keyformer";
    /// <inheritdoc/>
    public int ScoreFrom(int rows) => 0;
    /// <inheritdoc/>
    public AttentionScoreKind Kind => AttentionScoreKind.GumbelSoftmax;
    /// <inheritdoc/>
    public float Temperature(int step, int horizon) => 1f + Math.Min(1f, step / (float)Math.Max(1, horizon));
    /// <inheritdoc/>
    public void Observe(KvBudget cache, ReadOnlySpan<float> received, int rows)
    {
        var s = cache.Scores.AsSpan(0, received.Length);
        System.Numerics.Tensors.TensorPrimitives.Add(s, received, s);
    }
    /// <inheritdoc/>
    public int RecentWindow(int keep) => (int)MathF.Round(0.3f * keep);
    /// <inheritdoc/>
    public void RankScores(KvBudget cache, ReadOnlySpan<int> byPosition, Span<float> scores)
    {
        for (int i = 0; i < byPosition.Length; i++) scores[i] = cache.Scores[byPosition[i]];
    }
}
