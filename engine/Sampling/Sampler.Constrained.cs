using Tessera.Constraints;

namespace Tessera.Sampling;

public sealed partial class Sampler
{
    /// <summary>Rejections before the draw gives up on checking tokens one at a time and masks the vocabulary.</summary>
    public const int MaxRejections = 16;

    private bool[]? _allowed;

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

    /// <summary>Draws without replacement from softmax(logits / T) until a token is allowed (see <see cref="SampleConstrained"/>).</summary>
    private int RejectionDraw(Span<float> logits, double uniform)
    {
        var c = Constraint!;
        int n = logits.Length;
        float max = float.NegativeInfinity;
        for (int i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
        if (float.IsNegativeInfinity(max)) return -1;
        double total = 0;
        for (int i = 0; i < n; i++) { float e = MathF.Exp((logits[i] - max) / _o.Temperature); _probs[i] = e; total += e; }
        for (int attempt = 0; ; attempt++)
        {
            if (attempt == MaxRejections)
            {
                // Give up checking one by one: keep only the allowed tokens not yet drawn, and draw once more.
                var allowed = _allowed ??= new bool[n];
                c.Mask(allowed);
                total = 0;
                for (int i = 0; i < n; i++) { if (!allowed[i]) _probs[i] = 0; total += _probs[i]; }
                if (!(total > 0))
                {
                    // Every allowed token's probability underflowed: the most probable allowed one.
                    int best = -1;
                    for (int i = 0; i < n; i++) if (allowed[i] && (best < 0 || logits[i] > logits[best])) best = i;
                    return best;
                }
                return Pick(n, (attempt == 0 ? uniform : NextUniform()) * total);
            }
            if (!(total > 0)) { attempt = MaxRejections - 1; continue; }
            int t = Pick(n, (attempt == 0 ? uniform : NextUniform()) * total);
            if (c.Allows(t)) return t;
            c.Rejections++;
            total -= _probs[t];
            _probs[t] = 0;
        }
    }

    /// <summary>The token where the running sum of _probs passes <paramref name="u"/> (the last positive one if rounding runs past the end).</summary>
    private int Pick(int n, double u)
    {
        double acc = 0;
        int last = -1;
        for (int i = 0; i < n; i++)
        {
            if (_probs[i] <= 0) continue;
            acc += _probs[i];
            last = i;
            if (u < acc) return i;
        }
        return last;
    }
}
