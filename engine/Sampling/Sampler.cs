using Tessera.Sampling.Processors;

namespace Tessera.Sampling;

/// <summary>
/// Picks tokens from logits: the pipeline's stages (<see cref="ILogitsProcessor"/>: penalties, then logit bias),
/// then top-k, top-p, min-p, temperature and a seeded draw, in llama.cpp's order. Buffers are sized once for the
/// vocabulary: no allocation per token.
/// </summary>
public sealed partial class Sampler
{
    private readonly SamplingOptions _o;
    private readonly int[] _ids;
    private readonly float[] _keys;
    private readonly float[] _probs;
    private readonly ILogitsProcessor[] _stages;
    private ulong _rng;

    /// <summary>A sampler for a vocabulary of <paramref name="vocabSize"/> tokens; with <paramref name="constraint"/>,
    /// every token drawn is one the grammar allows, drawn exactly from the model's distribution restricted to them.</summary>
    public Sampler(SamplingOptions options, int vocabSize, Constraints.TokenConstraint? constraint = null)
    {
        Constraint = constraint;
        options.Validate();
        _o = options;
        _ids = new int[vocabSize];
        _keys = new float[vocabSize];
        _probs = new float[vocabSize];
        _rng = options.Seed ?? (ulong)Random.Shared.NextInt64();
        var stages = new List<ILogitsProcessor>(2);
        if (RepetitionPenalties.Applies(options)) stages.Add(new RepetitionPenalties(options));
        if (options.LogitBias is { Count: > 0 } bias) stages.Add(new LogitBias(bias, vocabSize));
        _stages = [.. stages];
    }

    /// <summary>The stages run before truncation and the draw, in order.</summary>
    public IReadOnlyList<ILogitsProcessor> Stages => _stages;

    /// <summary>Records a token (prompt or generated) for the repetition penalties.</summary>
    public void Accept(int token)
    {
        foreach (var stage in _stages) stage.Accept(token);
    }

    /// <summary>Chooses the next token. <paramref name="logits"/> is modified by the stages (penalties, bias).</summary>
    public int Sample(Span<float> logits) => Sample(logits, _o.Temperature > 0 ? NextUniform() : 0);

    /// <summary>Chooses the next token with <paramref name="uniform"/> in [0, 1) as the random draw (greedy ignores
    /// it). The device sampler (kernels/sample_topk.cu) takes the same number, so both can be compared.</summary>
    public int Sample(Span<float> logits, double uniform)
    {
        if (!(uniform >= 0 && uniform < 1)) throw new ArgumentOutOfRangeException(nameof(uniform), uniform, "must be in [0, 1)");
        foreach (var stage in _stages) stage.Process(logits);
        if (Constraint is not null) return SampleConstrained(logits, uniform);
        if (_o.Temperature <= 0) return ArgMax(logits);
        return Draw(logits, uniform);
    }

    /// <summary>Truncation (top-k, top-p, min-p), temperature and the draw, over logits the stages have processed.</summary>
    private int Draw(Span<float> logits, double uniform)
    {
        // Candidates sorted by logit, descending, truncated to top-k.
        int n = logits.Length;
        int k = _o.TopK > 0 && _o.TopK < n ? _o.TopK : n;
        if (k < n) SelectTopK(logits, k);
        else for (int i = 0; i < n; i++) { _ids[i] = i; _keys[i] = -logits[i]; }
        // Only the k candidates are sorted: with top-k 40 that is the vocabulary scanned once, not sorted.
        Array.Sort(_keys, _ids, 0, k);
        // Softmax at temperature 1 for top-p and min-p, as llama.cpp's chain does before the temperature step.
        float max = -_keys[0];
        double sum = 0;
        for (int i = 0; i < k; i++) { float e = MathF.Exp(-_keys[i] - max); _probs[i] = e; sum += e; }
        if (_o.TopP < 1)
        {
            double cum = 0;
            for (int i = 0; i < k; i++)
            {
                cum += _probs[i] / sum;
                if (cum >= _o.TopP) { k = i + 1; break; }
            }
        }
        if (_o.MinP > 0)
        {
            // probs are sorted, probs[0] is the maximum
            float threshold = _probs[0] * _o.MinP;
            int keep = 1;
            while (keep < k && _probs[keep] >= threshold) keep++;
            k = keep;
        }
        // Temperature, then the draw.
        double total = 0;
        for (int i = 0; i < k; i++) { float e = MathF.Exp((-_keys[i] - max) / _o.Temperature); _probs[i] = e; total += e; }
        if (_measure)
        {
            double h = 0;
            for (int i = 0; i < k; i++) { double q = _probs[i] / total; if (q > 0) h -= q * Math.Log(q); }
            _lastEntropy = h;
        }
        double u = uniform * total;
        double acc = 0;
        for (int i = 0; i < k; i++)
        {
            acc += _probs[i];
            if (u < acc) { _lastProbability = _probs[i] / total; return _ids[i]; }
        }
        _lastProbability = _probs[k - 1] / total;
        return _ids[k - 1];
    }

    private bool _measure;
    private double _lastProbability, _lastEntropy;

    /// <summary>Draws as <see cref="Sample(Span{float})"/> and reports the drawn token's probability under the chain's
    /// (warped) distribution and that distribution's entropy in nats (Cautious NTP's uncertainty). Sampling only:
    /// greedy reports probability 1 and entropy 0.</summary>
    public int SampleMeasured(Span<float> logits, out double probability, out double entropy)
    {
        if (_o.Temperature <= 0 || Constraint is not null)
        {
            probability = 1;
            entropy = 0;
            return Sample(logits);
        }
        _measure = true;
        try
        {
            int t = Sample(logits);
            probability = _lastProbability;
            entropy = _lastEntropy;
            return t;
        }
        finally { _measure = false; }
    }

    /// <summary>Leaves the <paramref name="k"/> largest logits (earlier index first among equals) in _ids/_keys[0..k), keys negated,
    /// in no particular order: a min-heap of size k over one pass of the logits.</summary>
    private void SelectTopK(ReadOnlySpan<float> logits, int k)
    {
        // Heap ordered by (logit, then later index first): the root is the candidate to drop next.
        for (int i = 0; i < k; i++)
        {
            _ids[i] = i;
            _keys[i] = logits[i];
            SiftUp(i);
        }
        for (int i = k; i < logits.Length; i++)
        {
            if (!(logits[i] > _keys[0])) continue; // equal keeps the earlier index, as a stable sort would
            _ids[0] = i;
            _keys[0] = logits[i];
            SiftDown(0, k);
        }
        for (int i = 0; i < k; i++) _keys[i] = -_keys[i];
    }

    private bool Below(int a, int b) => _keys[a] < _keys[b] || (_keys[a] == _keys[b] && _ids[a] > _ids[b]);

    private void Swap(int a, int b)
    {
        (_keys[a], _keys[b]) = (_keys[b], _keys[a]);
        (_ids[a], _ids[b]) = (_ids[b], _ids[a]);
    }

    private void SiftUp(int i)
    {
        while (i > 0)
        {
            int parent = (i - 1) / 2;
            if (!Below(i, parent)) return;
            Swap(i, parent);
            i = parent;
        }
    }

    private void SiftDown(int i, int count)
    {
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < count && Below(l, m)) m = l;
            if (r < count && Below(r, m)) m = r;
            if (m == i) return;
            Swap(i, m);
            i = m;
        }
    }

    /// <summary>Index of the largest logit (the first one on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        float bestValue = float.NegativeInfinity;
        for (int i = 0; i < logits.Length; i++)
            if (logits[i] > bestValue) { bestValue = logits[i]; best = i; }
        return best;
    }

    /// <summary>The next number of the seeded sequence, uniform in [0, 1) (SplitMix64: small, fast, and the same
    /// sequence on every platform for a given seed).</summary>
    public double NextUniform()
    {
        ulong z = _rng += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}
