namespace Tessera.Sampling;

/// <summary>
/// A Fenwick (binary indexed) tree over token weights: built in O(V), then the token where the running sum passes a
/// value is found, and a token's weight removed, in O(log V). Rejection sampling under a grammar draws without
/// replacement with it. Buffers are kept between tokens: no allocation per token.
/// </summary>
internal sealed class WeightTree
{
    private double[] _sum = [];
    private float[] _w = [];
    private int _n, _top;

    public double Total { get; private set; }

    public void Build(ReadOnlySpan<float> weights)
    {
        _n = weights.Length;
        if (_sum.Length < _n + 1) { _sum = new double[_n + 1]; _w = new float[_n]; }
        Array.Clear(_sum, 0, _n + 1);
        double total = 0;
        for (int i = 0; i < _n; i++)
        {
            float w = weights[i] > 0 ? weights[i] : 0;
            _w[i] = w;
            total += w;
            int k = i + 1;
            _sum[k] += w;
            int parent = k + (k & -k);
            if (parent <= _n) _sum[parent] += _sum[k];
        }
        Total = total;
        _top = 1;
        while (_top * 2 <= _n) _top *= 2;
    }

    /// <summary>The first token whose running sum exceeds <paramref name="u"/> (the last positive one if rounding runs past the end).</summary>
    public int Find(double u)
    {
        int pos = 0;
        for (int step = _top; step > 0; step >>= 1)
        {
            int next = pos + step;
            if (next <= _n && _sum[next] <= u)
            {
                pos = next;
                u -= _sum[next];
            }
        }
        // pos tokens have running sum <= u: token pos is the one; skip zero weights rounding may land on.
        while (pos < _n && _w[pos] <= 0) pos++;
        if (pos >= _n) { pos = _n - 1; while (pos > 0 && _w[pos] <= 0) pos--; }
        return pos;
    }

    public bool Removed(int token) => _w[token] <= 0;

    public void Remove(int token)
    {
        double w = _w[token];
        if (w <= 0) return;
        _w[token] = 0;
        Total -= w;
        for (int k = token + 1; k <= _n; k += k & -k) _sum[k] -= w;
    }
}
