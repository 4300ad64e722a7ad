namespace Tessera.Pruning;

/// <summary>One prompt-pruning rule (LazyLLM, SpAtten): which layers' attention it reads and how it ranks the
/// prompt's tokens from it. One small class each; <see cref="PrefillPruning"/> runs the schedule and the pruning.</summary>
internal interface IPrefillPruner
{
    /// <summary>The first of the step's current <paramref name="rows"/> rows whose attention at
    /// <paramref name="layer"/> the rule needs, or -1.</summary>
    int ScoreFrom(int layer, int rows);

    /// <summary>What the scored rows of <paramref name="layer"/> gave each current row (<paramref name="received"/>,
    /// one value per current row; <paramref name="original"/>[j] is current row j's index in the prompt).</summary>
    void Observe(int layer, ReadOnlySpan<float> received, ReadOnlySpan<int> original);

    /// <summary>The rank score of prompt row <paramref name="original"/> (higher is kept first).</summary>
    float Score(int original);
}

/// <summary>LazyLLM: a token's rank at a pruning layer is the attention the prompt's last token gave it in the layer
/// before, summed over heads.</summary>
internal sealed class LazyLlmPruner(IReadOnlyList<(int Layer, double Keep)> schedule, int rows) : IPrefillPruner
{
    private readonly float[] _last = new float[rows];

    public int ScoreFrom(int layer, int rows)
    {
        foreach (var (l, _) in schedule) if (l == layer + 1) return rows - 1;
        return -1;
    }

    public void Observe(int layer, ReadOnlySpan<float> received, ReadOnlySpan<int> original)
    {
        for (int j = 0; j < original.Length; j++) _last[original[j]] = received[j];
    }

    public float Score(int original) => _last[original];
}

/// <summary>SpAtten: a token's rank is the attention it received from every query of the prompt, over every head of
/// every layer so far (cumulative importance); the cascade follows from pruning only the rows still running. In a
/// decoder the sum is causal: token i is seen by the n − i queries at or after it, so a plain sum ranks by position
/// (the first tokens win, the recent ones the continuation needs lose). SpAtten's encoder has every query see every
/// token; the decoder equivalent divides each token's sum by the number of queries that could attend to it (the
/// mean attention it received).</summary>
internal sealed class SpAttenPruner(int lastStage, int rows) : IPrefillPruner
{
    private readonly float[] _sum = new float[rows];
    private readonly float[] _seen = new float[rows];

    public int ScoreFrom(int layer, int rows) => layer < lastStage ? 0 : -1;

    public void Observe(int layer, ReadOnlySpan<float> received, ReadOnlySpan<int> original)
    {
        // Every current row is a query of this layer; current row j is seen by rows j .. n - 1.
        int n = original.Length;
        for (int j = 0; j < n; j++)
        {
            _sum[original[j]] += received[j];
            _seen[original[j]] += n - j;
        }
    }

    public float Score(int original) => _seen[original] > 0 ? _sum[original] / _seen[original] : 0;
}
