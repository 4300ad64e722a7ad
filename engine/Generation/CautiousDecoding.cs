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
    public int UncertainSteps { get; internal set; }
    /// <summary>Trials sampled at those steps.</summary>
    public int Trials { get; internal set; }
    /// <summary>Forward passes beyond one per generated token: the trials' rounds (all trials batched as the rows
    /// of one tree per round) and the pass that caches the kept trial, less the passes its tokens would have cost.</summary>
    public int ExtraForwardPasses { get; internal set; }
    /// <summary>Rows the trials' passes ran.</summary>
    public long TrialRows { get; internal set; }
}

/// <summary>One uncertain step's trials, batched: every round runs all live trials as branches of one tree under the
/// last cached token (re-run as the root), reading logits only for each trial's newest row.</summary>
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
    private float[] _rows = [];
    private readonly float[] _row;
    private readonly List<byte> _bytes = new(16);
    private readonly int[] _prevRow = new int[16];

    /// <summary>Trials of the last <see cref="Run"/>, their tokens and negative log-likelihoods (for tests).</summary>
    internal int LastTrials { get; private set; }
    internal ReadOnlySpan<int> Trial(int i) => _tokens[i].AsSpan(0, _length[i]);
    internal double Nll(int i) => _nll[i];

    /// <summary>The kept trial's tokens after <see cref="Run"/>.</summary>
    public int[] Kept { get; } = new int[32];

    public CautiousTrials(LlamaModel model, Tokenizer tokenizer, CautiousOptions options)
    {
        _model = model;
        _tokenizer = tokenizer;
        _options = options;
        _vocab = model.Config.VocabSize;
        _row = new float[_vocab];
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
    /// Runs <paramref name="n"/> trials from <paramref name="logits"/> (the next-token row after <paramref name="last"/>,
    /// the newest cached token at position <c>state.Position - 1</c>); trial 0 starts with <paramref name="first"/>
    /// (already drawn, probability <paramref name="firstP"/>). Leaves the state as it was and returns the kept trial's
    /// tokens, in <see cref="Kept"/> (the last one not yet cached); returns how many.
    /// </summary>
    public int Run(RunState state, Sampler sampler, ReadOnlySpan<float> logits, int last, int first, double firstP, int n, int budget, CautiousStats stats)
    {
        // A round's tree is the root (re-run at Position - 1) and up to n x maxLen trial rows: it must fit the context.
        int room = state.ContextSize - state.Position;
        n = Math.Max(1, Math.Min(Math.Min(n, 16), room));
        int maxLen = Math.Min(Math.Min(_options.MaxTrialTokens, budget), (Backends.RaggedBatch.MaxTreeRows - 1) / n);
        maxLen = Math.Max(1, Math.Min(maxLen, room / n));
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
            _done[i] = EndsTrial(t) || maxLen == 1;
        }
        int root = state.Position - 1;
        while (true)
        {
            // The tree: the root, the live trials' earlier tokens, then each live trial's newest token (logits for these).
            int rows = 1, live = 0;
            _treeTokens[0] = last;
            _parents[0] = -1;
            var lastIndexOfPrev = _prevRow;
            for (int i = 0; i < n; i++)
            {
                if (_done[i]) continue;
                live++;
                int parent = 0;
                for (int j = 0; j < _length[i] - 1; j++)
                {
                    _treeTokens[rows] = _tokens[i][j];
                    _parents[rows] = parent;
                    parent = rows++;
                }
                lastIndexOfPrev[i] = parent;
            }
            if (live == 0) break;
            int logitsFrom = rows;
            for (int i = 0; i < n; i++)
            {
                if (_done[i]) continue;
                _treeTokens[rows] = _tokens[i][_length[i] - 1];
                _parents[rows] = lastIndexOfPrev[i];
                _lastRow[i] = rows - logitsFrom;
                rows++;
            }
            int need = (rows - logitsFrom) * _vocab;
            if (_rows.Length < need) _rows = new float[need];
            state.Rewind(root);
            _model.ForwardTree(state, _treeTokens.AsSpan(0, rows), _parents.AsSpan(0, rows), _rows.AsSpan(0, need), logitsFrom);
            stats.ExtraForwardPasses++;
            stats.TrialRows += rows;
            for (int i = 0; i < n; i++)
            {
                if (_done[i]) continue;
                _rows.AsSpan(_lastRow[i] * _vocab, _vocab).CopyTo(_row);
                int t = sampler.SampleMeasured(_row, out double p, out _);
                _tokens[i][_length[i]++] = t;
                _nll[i] -= Math.Log(Math.Max(p, 1e-300));
                if (EndsTrial(t) || _length[i] >= maxLen) _done[i] = true;
            }
        }
        LastTrials = n;
        // Keep the trial of lowest perplexity: exp(mean negative log-likelihood); the earliest on a tie.
        int best = 0;
        for (int i = 1; i < n; i++)
            if (_nll[i] / _length[i] < _nll[best] / _length[best]) best = i;
        // Cache the root and the kept trial's tokens but its last (which the caller runs next, as any drawn token).
        state.Rewind(root);
        var keep = _tokens[best].AsSpan(0, _length[best]);
        Span<int> chain = stackalloc int[keep.Length];
        chain[0] = last;
        keep[..^1].CopyTo(chain[1..]);
        _model.Forward(state, chain.ToArray());
        stats.ExtraForwardPasses += 1 - (keep.Length - 1);  // this pass, less the passes its cached tokens saved
        stats.UncertainSteps++;
        stats.Trials += n;
        keep.CopyTo(Kept);
        return keep.Length;
    }
}
