namespace Tessera.Kv;

/// <summary>
/// The token-pruning top-k op on the host (the CPU op; <c>kernels/topk_prune.cu</c> is its CUDA twin): the indices of
/// the <c>k</c> largest of <c>n</c> scores, returned in ascending index order (the set of positions to keep). Ties
/// are broken by index, the lower first, so exactly k indices are chosen whatever the scores and both backends agree
/// bit for bit. Each score and its index form one 64-bit key (order-preserving bits of the float, inverted, then the
/// index), so a plain sort of the keys orders by (score descending, index ascending); no allocation once the
/// scratch has grown.
/// </summary>
public static class TopK
{
    [ThreadStatic] private static ulong[]? t_keys;

    /// <summary>Writes the indices of the <paramref name="k"/> largest of <paramref name="scores"/> to
    /// <paramref name="selected"/>[0..k), ascending.</summary>
    /// <exception cref="ArgumentException">k is outside 0..n, <paramref name="selected"/> is too short, or a score is NaN.</exception>
    public static void Select(ReadOnlySpan<float> scores, int k, Span<int> selected)
    {
        int n = scores.Length;
        if ((uint)k > (uint)n) throw new ArgumentOutOfRangeException(nameof(k), $"top-k {k} of {n} scores");
        if (selected.Length < k) throw new ArgumentException($"room for {selected.Length} indices, need {k}", nameof(selected));
        if (k == 0) return;
        if (k == n)
        {
            for (int i = 0; i < n; i++) selected[i] = i;
            return;
        }
        if (t_keys == null || t_keys.Length < n) t_keys = new ulong[Math.Max(n, 2 * (t_keys?.Length ?? 0))];
        var keys = t_keys.AsSpan(0, n);
        for (int i = 0; i < n; i++)
        {
            if (float.IsNaN(scores[i])) throw new ArgumentException($"score {i} is NaN", nameof(scores));
            keys[i] = (ulong)~Orderable(scores[i]) << 32 | (uint)i;
        }
        keys.Sort();
        for (int i = 0; i < k; i++) selected[i] = (int)(uint)keys[i];
        selected[..k].Sort();
    }

    /// <summary>The float's bits mapped so that unsigned order is numeric order; −0 is taken as +0 (they are equal
    /// numbers, so a tie, broken by index).</summary>
    public static uint Orderable(float x)
    {
        uint b = x == 0 ? 0u : BitConverter.SingleToUInt32Bits(x);
        return (b & 0x8000_0000u) != 0 ? ~b : b | 0x8000_0000u;
    }
}
