namespace Tessera.Kv.Policies;

/// <summary>Heavy-Hitter Oracle (Zhang et al. 2023): every row's attention, summed over heads, layers and steps, is a
/// position's score; the budget beyond the sinks is half recent window, half heavy hitters (the paper's split).</summary>
public sealed class H2OPolicy : IKvEvictionPolicy
{
    /// <inheritdoc/>
    public string Name => "h2o";
    /// <inheritdoc/>
    public int ScoreFrom(int rows) => 0;
    /// <inheritdoc/>
    public void Observe(KvBudget cache, ReadOnlySpan<float> received, int rows)
    {
        var s = cache.Scores.AsSpan(0, received.Length);
        System.Numerics.Tensors.TensorPrimitives.Add(s, received, s);
    }
    /// <inheritdoc/>
    public int RecentWindow(int keep) => keep / 2;
    /// <inheritdoc/>
    public void RankScores(KvBudget cache, ReadOnlySpan<int> byPosition, Span<float> scores)
    {
        for (int i = 0; i < byPosition.Length; i++) scores[i] = cache.Scores[byPosition[i]];
    }
}
