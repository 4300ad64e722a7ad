using Tessera.Model;
using Tessera.Sampling;
using Tessera.Tokenization;

namespace Tessera.Generation;

/// <summary>
/// Cautious Next Token Prediction (CNTP, Wang et al., ACL Findings 2025): where the model is unsure, sample several
/// trial continuations and keep the most probable one. At each step the entropy H of the sampling distribution (after
/// temperature and truncation) sets the number of trials, <c>1 + (MaxTrials - 1) · clamp((H - EntropyLow) / (EntropyHigh
/// - EntropyLow), 0, 1)</c> (the paper's rule and defaults); each trial samples until a token with punctuation
/// (<c>. , ? ! : ; ) ] }</c> or a newline), an end of generation, or <see cref="MaxTrialTokens"/>; the trial of lowest
/// perplexity under that distribution is kept.
/// </summary>
public sealed record CautiousOptions
{
    /// <summary>Most trials at one step (<c>--cautious-trials</c>, the paper's 10).</summary>
    public int MaxTrials { get; init; } = 10;
    /// <summary>Entropy (nats) at or below which one sample is drawn.</summary>
    public float EntropyLow { get; init; } = 0.01f;
    /// <summary>Entropy (nats) at or above which <see cref="MaxTrials"/> are drawn.</summary>
    public float EntropyHigh { get; init; } = 1.5f;
    /// <summary>Most tokens in one trial.</summary>
    public int MaxTrialTokens { get; init; } = 12;

    /// <summary>Throws <see cref="ArgumentException"/> naming the value out of range.</summary>
    public void Validate()
    {
        if (MaxTrials is < 1 or > 16) throw new ArgumentException($"--cautious-trials {MaxTrials}: must be 1 to 16", nameof(MaxTrials));
        if (!(EntropyLow >= 0 && EntropyHigh > EntropyLow)) throw new ArgumentException($"cautious entropy thresholds {EntropyLow}..{EntropyHigh}: need 0 <= low < high", nameof(EntropyHigh));
        if (MaxTrialTokens is < 1 or > 32) throw new ArgumentException($"cautious trial length {MaxTrialTokens}: must be 1 to 32", nameof(MaxTrialTokens));
    }

    /// <summary>Trials for a step whose distribution has entropy <paramref name="entropy"/>.</summary>
    public int TrialsFor(double entropy) =>
        (int)(1 + (MaxTrials - 1) * Math.Clamp((entropy - (double)EntropyLow) / ((double)EntropyHigh - EntropyLow), 0, 1));
}

/// <summary>What Cautious NTP did in one generation (<c>--json</c>'s <c>cautious</c>).</summary>
public sealed class CautiousStats
{
    /// <summary>Steps whose entropy called for more than one trial.</summary>
    public long UncertainSteps { get; internal set; }
    /// <summary>Trials sampled at those steps.</summary>
    public long Trials { get; internal set; }
    /// <summary>Forward passes beyond one per generated token: the trials' rounds (all trials batched as the rows
    /// of one forest per round) and the pass that caches the kept trial, less the passes its tokens would have cost.
    /// Counted when a step's trials end (never negative for a step), so it only grows.</summary>
    public long ExtraForwardPasses { get; internal set; }
    /// <summary>Rows the trials' passes ran.</summary>
    public long TrialRows { get; internal set; }
}

/// <summary>
/// One uncertain step's trials, batched: every round runs all live trials as the branches of one forest over the
/// cached prefix (each trial's first token a root), reading logits only for each trial's newest row. The rounds are
/// driven by <see cref="Run"/> on a <see cref="RunState"/> (TextGenerator) or by the scheduler, which plans a round as
/// a sequence's rows in a step shared with other requests: <see cref="Start"/>, then <see cref="BuildRound"/> and
/// <see cref="Absorb"/> while <see cref="Active"/>, then <see cref="Finish"/>.
/// </summary>
internal sealed class CautiousTrials
{
    private readonly LlamaModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly CautiousOptions _options;
    private readonly int _vocab;
    private readonly int[][] _tokens = [.. Enumerable.Range(0, 16).Select(_ => new int[32])];
    private readonly int[] _length = new int[16];
    private readonly double[] _nll = new double[16];
    private readonly bool[] _done = new bool[16];
    private readonly int[] _treeTokens = new int[Backends.RaggedBatch.MaxTreeRows], _parents = new int[Backends.RaggedBatch.MaxTreeRows];
    private readonly int[] _lastRow = new int[16];
    private float[] _logits = [];
    private readonly float[] _row;
    private readonly List<byte> _bytes = new(16);
    private int _n, _maxLen, _roundRows, _logitsFrom, _rounds, _rows;

    /// <summary>Trials of the last step, their tokens and negative log-likelihoods (for tests).</summary>
    internal int LastTrials => _n;
    internal ReadOnlySpan<int> Trial(int i) => _tokens[i].AsSpan(0, _length[i]);
    internal double Nll(int i) => _nll[i];

    /// <summary>The kept trial's tokens after <see cref="Finish"/>.</summary>
    public int[] Kept { get; } = new int[32];

    /// <summary>Whether trials are under way (started, not finished).</summary>
    public bool Active { get; private set; }

    /// <summary>The raw logits of the uncertain step (the scheduler keeps them here before its sampler warps them in place).</summary>
    public float[] Raw { get; }

    /// <summary>The last built round's rows, parents (-1 for a trial's first token) and first row with logits.</summary>
    public ReadOnlySpan<int> RoundTokens => _treeTokens.AsSpan(0, _roundRows);
    public ReadOnlySpan<int> RoundParents => _parents.AsSpan(0, _roundRows);
    public int RoundLogitsFrom => _logitsFrom;

    public CautiousTrials(LlamaModel model, Tokenizer tokenizer, CautiousOptions options)
    {
        _model = model;
        _tokenizer = tokenizer;
        _options = options;
        _vocab = model.Config.VocabSize;
        _row = new float[_vocab];
        Raw = new float[_vocab];
    }

    /// <summary>Whether a token ends a trial: punctuation or a newline in its text, or an end of generation.</summary>
    public bool EndsTrial(int token)
    {
        if (_tokenizer.IsEndOfGeneration(token)) return true;
        _bytes.Clear();
        _tokenizer.AppendTokenBytes(token, _bytes);
        foreach (byte b in _bytes)
            if (b is (byte)'.' or (byte)',' or (byte)'?' or (byte)'!' or (byte)':' or (byte)';' or (byte)')' or (byte)']' or (byte)'}' or (byte)'\n')
                return true;
        return false;
    }

    /// <summary>
    /// Starts <paramref name="n"/> trials from <paramref name="logits"/> (the next-token row of the cached prefix);
    /// trial 0 starts with <paramref name="first"/> (already drawn, probability <paramref name="firstP"/>), the others
    /// draw their first token from copies of the row. A trial is at most <paramref name="budget"/> tokens (those left
    /// to generate), and a round's rows fit <paramref name="room"/> (the context left) and <paramref name="maxRows"/>.
    /// </summary>
    public void Start(Sampler sampler, ReadOnlySpan<float> logits, int first, double firstP, int n, int budget, int room, int maxRows)
    {
        n = Math.Max(1, Math.Min(Math.Min(n, 16), Math.Min(room, maxRows)));
        int maxLen = Math.Min(Math.Min(_options.MaxTrialTokens, budget), maxRows / n);
        _maxLen = Math.Max(1, Math.Min(maxLen, room / n));
        _n = n;
        _rounds = _rows = 0;
        for (int i = 0; i < n; i++)
        {
            int t;
            double p;
            if (i == 0) { t = first; p = firstP; }
            else
            {
                logits.CopyTo(_row);
                t = sampler.SampleMeasured(_row, out p, out _);
            }
            _tokens[i][0] = t;
            _length[i] = 1;
            _nll[i] = -Math.Log(Math.Max(p, 1e-300));
            _done[i] = EndsTrial(t) || _maxLen == 1;
        }
        Active = true;
        if (BuildRound() == 0) Active = false;
    }

    /// <summary>Lays out the next round (see <see cref="RoundTokens"/>): the live trials' earlier tokens as chains,
    /// then each live trial's newest token, whose rows give logits. Returns its rows (0: every trial is done).</summary>
    private int BuildRound()
    {
        int rows = 0;
        for (int i = 0; i < _n; i++)
        {
            if (_done[i]) continue;
            int parent = -1;
            for (int j = 0; j < _length[i] - 1; j++)
            {
                _treeTokens[rows] = _tokens[i][j];
                _parents[rows] = parent;
                parent = rows++;
            }
            _lastRow[i] = parent;  // the row its newest token hangs from, for now
        }
        _logitsFrom = rows;
        for (int i = 0; i < _n; i++)
        {
            if (_done[i]) continue;
            _treeTokens[rows] = _tokens[i][_length[i] - 1];
            _parents[rows] = _lastRow[i];
            _lastRow[i] = rows - _logitsFrom;
            rows++;
        }
        // A forest's first row is a root; with no earlier tokens yet, every row is one.
        return _roundRows = rows;
    }

    /// <summary>Takes the round's logit rows (<paramref name="rowLogits"/>: one per live trial, in trial order, as the
    /// round asked) and draws each live trial's next token; builds the next round, or ends the trials.</summary>
    public void Absorb(Sampler sampler, ReadOnlySpan<float> rowLogits)
    {
        _rows += _roundRows;
        _rounds++;
        for (int i = 0; i < _n; i++)
        {
            if (_done[i]) continue;
            rowLogits.Slice(_lastRow[i] * _vocab, _vocab).CopyTo(_row);
            int t = sampler.SampleMeasured(_row, out double p, out _);
            _tokens[i][_length[i]++] = t;
            _nll[i] -= Math.Log(Math.Max(p, 1e-300));
            if (EndsTrial(t) || _length[i] >= _maxLen) _done[i] = true;
        }
        if (BuildRound() == 0) Active = false;
    }

    /// <summary>Keeps the trial of lowest perplexity (exp of its mean negative log-likelihood; the earliest on a tie),
    /// copies its tokens to <see cref="Kept"/> and returns how many. Counts the step in <paramref name="stats"/>,
    /// with the pass that caches the kept tokens but the last (when there are any) less the passes they save.</summary>
    public int Finish(CautiousStats stats)
    {
        Active = false;
        int best = 0;
        for (int i = 1; i < _n; i++)
            if (_nll[i] / _length[i] < _nll[best] / _length[best]) best = i;
        int len = _length[best];
        _tokens[best].AsSpan(0, len).CopyTo(Kept);
        stats.ExtraForwardPasses += _rounds + (len > 1 ? 1 : 0) - (len - 1);  // rounds >= len - 1: at least 0
        stats.TrialRows += _rows;
        stats.UncertainSteps++;
        stats.Trials += _n;
        return len;
    }

    /// <summary>
    /// Runs <paramref name="n"/> trials on <paramref name="state"/> from <paramref name="logits"/> (the next-token row
    /// of the cached prefix); trial 0 starts with <paramref name="first"/> (already drawn, probability
    /// <paramref name="firstP"/>). Leaves the cache holding the kept trial's tokens but its last (which the caller runs
    /// next, as any drawn token) and returns how many were kept, in <see cref="Kept"/>.
    /// </summary>
    public int Run(RunState state, Sampler sampler, ReadOnlySpan<float> logits, int first, double firstP, int n, int budget, CautiousStats stats)
    {
        int cached = state.Position;
        Start(sampler, logits, first, firstP, n, budget, state.ContextSize - cached, Backends.RaggedBatch.MaxTreeRows);
        while (Active)
        {
            int need = (_roundRows - _logitsFrom) * _vocab;
            if (_logits.Length < need) _logits = new float[need];
            state.Rewind(cached);
            _model.ForwardTree(state, RoundTokens, RoundParents, _logits.AsSpan(0, need), _logitsFrom);
            Absorb(sampler, _logits.AsSpan(0, need));
        }
        state.Rewind(cached);
        int len = Finish(stats);
        if (len > 1) _model.Forward(state, Kept.AsSpan(0, len - 1).ToArray());
        return len;
    }
}
