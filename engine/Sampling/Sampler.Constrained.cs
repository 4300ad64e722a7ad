using Tessera.Constraints;

namespace Tessera.Sampling;

public sealed partial class Sampler
{
    /// <summary>Rejections before the draw gives up on checking tokens one at a time and masks the vocabulary.</summary>
    public const int MaxRejections = 16;

    private bool[]? _allowed;
    private readonly WeightTree _tree = new();

    /// <summary>The grammar every drawn token must follow (it advances with each token drawn); null for none.</summary>
    public TokenConstraint? Constraint { get; }

    /// <summary>
    /// The constraint stage, then the rest of the chain, exactly: the token has probability p(x)·1[allowed]/Z under
    /// the chain's distribution p. Without truncation (greedy, or temperature alone, OpenAI's defaults) this is adaptive
    /// rejection sampling: candidates are drawn from p without replacement (the first is the unconstrained draw) and
    /// only those are checked against the grammar; the first allowed one is an exact draw from p restricted to the
    /// allowed set. After <see cref="MaxRejections"/> rejections the allowed set is computed in full and the draw
    /// finishes from what is left of it: the same distribution. With top-k, top-p or min-p, which are defined over the
    /// allowed tokens, the mask is computed first and the chain runs on it.
    /// </summary>
    private int SampleConstrained(Span<float> logits, double uniform)
    {
        var c = Constraint!;
        int token;
        bool truncates = (_o.TopK > 0 && _o.TopK < logits.Length) || _o.TopP < 1 || _o.MinP > 0;
        if (c.IsComplete) token = c.EndToken;
        else if (c.AlwaysMask) token = MaskLogits(logits) == 0 ? -1 : _o.Temperature <= 0 ? ArgMax(logits) : truncates ? Draw(logits, uniform) : MaskedDraw(logits, uniform);
        else if (_o.Temperature > 0 && truncates) token = MaskLogits(logits) > 0 ? Draw(logits, uniform) : -1;
        else token = _o.Temperature <= 0 ? GreedyConstrained(logits) : RejectionDraw(logits, uniform);
        if (token < 0)
            throw new InvalidOperationException($"{c.Matcher.Grammar.Source}: no token of the model's vocabulary can continue the output here (the vocabulary lacks the characters the grammar needs next)");
        c.Accept(token);
        return token;
    }

    /// <summary>Sets the logits of the tokens the grammar forbids to -inf; returns how many are allowed.</summary>
    private int MaskLogits(Span<float> logits)
    {
        var allowed = _allowed ??= new bool[logits.Length];
        int n = Constraint!.Mask(allowed);
        for (int i = 0; i < logits.Length; i++) if (!allowed[i]) logits[i] = float.NegativeInfinity;
        return n;
    }

    /// <summary>A draw from softmax(logits / T) over logits already masked, without sorting (the full-mask baseline).</summary>
    private int MaskedDraw(Span<float> logits, double uniform)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < logits.Length; i++) if (logits[i] > max) max = logits[i];
        double total = 0;
        for (int i = 0; i < logits.Length; i++) { float e = MathF.Exp((logits[i] - max) / _o.Temperature); _probs[i] = e; total += e; }
        _tree.Build(_probs.AsSpan(0, logits.Length));
        return _tree.Find(uniform * _tree.Total);
    }

    /// <summary>The allowed token of highest logit: tokens checked from the top down, the mask after too many misses.</summary>
    private int GreedyConstrained(Span<float> logits)
    {
        var c = Constraint!;
        for (int attempt = 0; attempt < MaxRejections; attempt++)
        {
            int t = ArgMax(logits);
            if (float.IsNegativeInfinity(logits[t])) return -1;
            if (c.Allows(t)) return t;
            c.Rejections++;
            logits[t] = float.NegativeInfinity;
        }
        if (MaskLogits(logits) == 0) return -1;
        int best = ArgMax(logits);
        return float.IsNegativeInfinity(logits[best]) ? -1 : best;
    }

    /// <summary>Draws without replacement from softmax(logits / T) until a token is allowed (see
    /// <see cref="SampleConstrained"/>): the weights go into a Fenwick tree once, so each draw and each removal of a
    /// rejected token costs O(log V) rather than a scan of the vocabulary.</summary>
    private int RejectionDraw(Span<float> logits, double uniform)
    {
        var c = Constraint!;
        int n = logits.Length;
        float max = float.NegativeInfinity;
        for (int i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
        if (float.IsNegativeInfinity(max)) return -1;
        for (int i = 0; i < n; i++) _probs[i] = MathF.Exp((logits[i] - max) / _o.Temperature);
        _tree.Build(_probs.AsSpan(0, n));
        for (int attempt = 0; attempt < MaxRejections; attempt++)
        {
            double total = _tree.Total;
            if (!(total > 0)) break;
            int t = _tree.Find((attempt == 0 ? uniform : NextUniform()) * total);
            if (c.Allows(t)) return t;
            c.Rejections++;
            _tree.Remove(t);
        }
        // Give up checking one by one: keep only the allowed tokens not yet drawn, and draw once more.
        var allowed = _allowed ??= new bool[n];
        c.Mask(allowed);
        for (int i = 0; i < n; i++) if (!allowed[i]) _probs[i] = 0; else if (_tree.Removed(i)) _probs[i] = 0;
        _tree.Build(_probs.AsSpan(0, n));
        if (!(_tree.Total > 0))
        {
            // Every allowed token's probability underflowed: the most probable allowed one.
            int best = -1;
            for (int i = 0; i < n; i++) if (allowed[i] && (best < 0 || logits[i] > logits[best])) best = i;
            return best;
        }
        return _tree.Find(NextUniform() * _tree.Total);
    }
}
