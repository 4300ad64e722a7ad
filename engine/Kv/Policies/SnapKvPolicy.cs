namespace Tessera.Kv.Policies;

/// <summary>SnapKV (Li et al. 2024): a prompt step's last <c>window</c> queries (32) vote with their attention; the
/// votes, average-pooled over width 5 in position order (so neighbours of a chosen token come along), rank the
/// positions outside that window, which is kept whole. Decode rows afterwards add their attention to the votes (the
/// paper compresses the prompt only; adding keeps the cap during long generations).</summary>
public sealed class SnapKvPolicy(int window) : IKvEvictionPolicy
{
    private const int Pool = 5;

    /// <inheritdoc/>
    public string Name => "snapkv";
    /// <inheritdoc/>
    public int ScoreFrom(int rows) => Math.Max(0, rows - window);
    /// <inheritdoc/>
    public void Observe(KvBudget cache, ReadOnlySpan<float> received, int rows)
    {
        var s = cache.Scores.AsSpan(0, received.Length);
        // A prompt step (by position when the prompt's end is known: a prompt's last chunk may be one row): its
        // observation window's votes replace the old ones.
        bool prompt = cache.PromptEnd > 0 ? cache.NextPosition <= cache.PromptEnd : rows > 1;
        if (prompt) received.CopyTo(s);
        else System.Numerics.Tensors.TensorPrimitives.Add(s, received, s);
    }
    /// <inheritdoc/>
    public int RecentWindow(int keep) => Math.Min(window, keep);
    /// <inheritdoc/>
    public void RankScores(KvBudget cache, ReadOnlySpan<int> byPosition, Span<float> scores)
    {
        // Width-5 average pool (stride 1, the window truncated at the ends), over the rows in position order.
        int n = byPosition.Length;
        for (int i = 0; i < n; i++)
        {
            int lo = Math.Max(0, i - Pool / 2), hi = Math.Min(n - 1, i + Pool / 2);
            float sum = 0;
            for (int j = lo; j <= hi; j++) sum += cache.Scores[byPosition[j]];
            scores[i] = sum / (hi - lo + 1);
        }
    }
}
