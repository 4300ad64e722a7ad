namespace Tessera.Kv.Policies;

/// <summary>StreamingLLM (Xiao et al. 2023): the sinks and the most recent positions; needs no attention scores.</summary>
public sealed class WindowPolicy : IKvEvictionPolicy
{
    /// <inheritdoc/>
    public string Name => "window";
    /// <inheritdoc/>
    public int ScoreFrom(int rows) => -1;
    /// <inheritdoc/>
    public void Observe(KvBudget cache, ReadOnlySpan<float> received, int rows) { }
    /// <inheritdoc/>
    public int RecentWindow(int keep) => keep;
    /// <inheritdoc/>
    public void RankScores(KvBudget cache, ReadOnlySpan<int> byPosition, Span<float> scores) => scores.Clear();
}
