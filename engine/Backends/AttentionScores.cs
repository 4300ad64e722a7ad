namespace Tessera.Backends;

/// <summary>What <see cref="AttentionScores"/> accumulates for each cached position a scored row attends to.</summary>
public enum AttentionScoreKind
{
    /// <summary>The attention probability softmax(q·k/√d) (H2O, SnapKV, LazyLLM, SpAtten).</summary>
    Probability,
    /// <summary>Keyformer's score: softmax((x + g) / τ) over the raw logits x = q·k/√d with Gumbel noise g drawn per
    /// (layer, head, position), at temperature <see cref="AttentionScores.Temperature"/>.</summary>
    GumbelSoftmax,
}

/// <summary>
/// An optional output of the attention op: per sequence of a step, the sum over the step's scored rows, over every
/// query head and over every layer, of what each cached position receives (<see cref="Kind"/>). The sums run over
/// all heads and layers because a sequence's cache keeps one set of positions for every layer (one block table), so a
/// KV budget drops the same positions everywhere. The CPU computes them inside its fused attention from the
/// probabilities it already has; CUDA in a pass of its own (kernels/attention_scores.cu) whose sums stay on the device
/// until the first <see cref="Of"/> after the step. When no sequence asks (<see cref="Any"/> false) attention runs as
/// before, at no cost. Arrays grow and are reused, so a step allocates nothing once they fit.
/// </summary>
public sealed class AttentionScores
{
    private int[] _from = [], _offset = [], _length = [];
    private ulong[] _seed = [];
    private float[] _values = [], _temperature = [];
    private AttentionScoreKind[] _kind = [];

    /// <summary>What is accumulated.</summary>
    public AttentionScoreKind Kind { get; set; }
    /// <summary>τ of <see cref="AttentionScoreKind.GumbelSoftmax"/> (Keyformer anneals it from 1 to 2).</summary>
    public float Temperature { get; set; } = 1;
    /// <summary>Seed of the Gumbel noise (the default of <see cref="Request(int, int)"/>); with the layer, head, cached
    /// position and the scoring row's position (new every step), it fixes every draw, so a run is reproducible and
    /// does not depend on the threads or on how steps were cut.</summary>
    public ulong Seed { get; set; }

    /// <summary>Whether some sequence of the next step is scored.</summary>
    public bool Any { get; private set; }

    /// <summary>Scores nothing in the next step.</summary>
    public void Clear()
    {
        Array.Clear(_from);
        Any = false;
    }

    /// <summary>Scores sequence <paramref name="sequence"/> of the next step from its row <paramref name="fromRow"/>
    /// on (0: every row, as H2O's prefill; its last row: a decode step, LazyLLM), with <see cref="Kind"/>,
    /// <see cref="Temperature"/> and <see cref="Seed"/>.</summary>
    public void Request(int sequence, int fromRow) => Request(sequence, fromRow, Kind, Temperature, Seed);

    /// <summary>As <see cref="Request(int, int)"/>, with this sequence's own kind, τ and noise seed (sequences of one
    /// batch may run different policies).</summary>
    public void Request(int sequence, int fromRow, AttentionScoreKind kind, float temperature, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        ArgumentOutOfRangeException.ThrowIfNegative(fromRow);
        if (sequence >= _from.Length)
        {
            int old = _from.Length;
            Array.Resize(ref _from, Math.Max(sequence + 1, 2 * old));
            _from.AsSpan(old).Clear();
            Array.Resize(ref _offset, _from.Length);
            Array.Resize(ref _length, _from.Length);
            Array.Resize(ref _temperature, _from.Length);
            Array.Resize(ref _kind, _from.Length);
            Array.Resize(ref _seed, _from.Length);
        }
        _from[sequence] = fromRow + 1; // stored + 1 so that 0 means "not scored" and Clear is one Array.Clear
        _kind[sequence] = kind;
        _temperature[sequence] = temperature;
        _seed[sequence] = seed;
        Any = true;
    }

    /// <summary>What sequence <paramref name="s"/> accumulates.</summary>
    public AttentionScoreKind KindOf(int s) => _kind[s];
    /// <summary>τ of sequence <paramref name="s"/>'s Gumbel softmax.</summary>
    public float TemperatureOf(int s) => _temperature[s];
    /// <summary>Seed of sequence <paramref name="s"/>'s Gumbel noise.</summary>
    internal ulong SeedOf(int s) => _seed[s];

    /// <summary>The first scored row of sequence <paramref name="s"/> (counted from its first row), or -1.</summary>
    public int FromRow(int s) => s < _from.Length ? _from[s] - 1 : -1;

    /// <summary>Whether row <paramref name="row"/> of <paramref name="batch"/> is scored.</summary>
    public bool Scores(RaggedBatch batch, int row)
    {
        int s = batch.RowSequence[row], from = FromRow(s);
        return from >= 0 && row - batch.RowStart[s] >= from;
    }

    /// <summary>The sums of sequence <paramref name="s"/> of the last step, one per cache position it saw (its cached
    /// positions and its rows); empty when it was not scored.</summary>
    public ReadOnlySpan<float> Of(int s)
    {
        if (FromRow(s) < 0) return default;
        Fetch();
        return _values.AsSpan(_offset[s], _length[s]);
    }

    // A backend that keeps the sums on its device (CUDA) hands over how to fetch them; the first Of fetches them
    // once, so a step syncs with the device only when someone reads the scores.
    private Action<Span<float>>? _pending;

    /// <summary>Floats of all scored sequences' sums in this step (offsets from <see cref="OffsetOf"/>).</summary>
    internal int Total { get; private set; }

    /// <summary>Counts <see cref="Begin"/> calls: a backend that accumulates elsewhere tells a new step by it.</summary>
    internal int Generation { get; private set; }

    /// <summary>Where sequence <paramref name="s"/>'s sums start among the step's <see cref="Total"/>.</summary>
    internal int OffsetOf(int s) => _offset[s];

    /// <summary>How many sums sequence <paramref name="s"/> has (its cache positions this step: cached and new rows).</summary>
    internal int LengthOf(int s) => _length[s];

    /// <summary>The sums live elsewhere until read: <paramref name="download"/> copies all <see cref="Total"/> of them
    /// into the span it gets (called at most once, by the first <see cref="Of"/> or <see cref="Fetch"/>; pass a cached
    /// delegate).</summary>
    internal void DownloadWith(Action<Span<float>> download) => _pending = download;

    /// <summary>Brings sums that live elsewhere home now (a backend about to reuse their memory for another owner).</summary>
    internal void Fetch()
    {
        if (_pending is not { } download) return;
        _pending = null;
        download(_values.AsSpan(0, Total));
    }

    /// <summary>Lays out and zeroes the sums for <paramref name="batch"/>; the forward pass calls it once per step,
    /// and every layer's attention then adds to them.</summary>
    internal void Begin(RaggedBatch batch)
    {
        int total = 0;
        for (int s = 0; s < batch.Sequences; s++)
        {
            if (FromRow(s) < 0) continue;
            if (FromRow(s) >= batch.RowCount[s])
                throw new ArgumentException($"sequence {s} is scored from row {FromRow(s)}, but has {batch.RowCount[s]} rows", nameof(batch));
            _offset[s] = total;
            _length[s] = batch.StartPos[s] + batch.RowCount[s];
            total += _length[s];
        }
        if (_values.Length < total) _values = new float[Math.Max(total, 2 * _values.Length)];
        _values.AsSpan(0, total).Clear();
        Total = total;
        Generation++;
        _pending = null;
    }

    /// <summary>The sums of sequence <paramref name="s"/>, writable (the attention op adds to them).</summary>
    internal Span<float> Accumulator(int s) => _values.AsSpan(_offset[s], _length[s]);

    /// <summary>Gumbel noise −ln(−ln u) for one (layer, head, cache position) as seen by the row at RoPE position
    /// <paramref name="row"/> of sequence <paramref name="sequence"/>: u from a counter hash (SplitMix64 finalizer) of the seed and the
    /// indices, strictly inside (0, 1).</summary>
    internal float Gumbel(int sequence, int layer, int head, int position, int row)
    {
        ulong z = _seed[sequence] ^ (ulong)(uint)row * 0x9E3779B97F4A7C15UL
            ^ ((ulong)(uint)layer << 48 | (ulong)(uint)head << 32 | (uint)position) * 0xC2B2AE3D27D4EB4FUL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        double u = ((z >> 11) + 0.5) * (1.0 / (1UL << 53));
        return (float)-Math.Log(-Math.Log(u));
    }
}
