namespace Tessera.Generation;

/// <summary>A token and its log-probability under the model (log-softmax of the raw logits, before penalties,
/// temperature and truncation, as OpenAI reports them).</summary>
/// <param name="Token">Token id.</param>
/// <param name="LogProb">Natural-log probability, at most 0.</param>
public readonly record struct TokenAlternative(int Token, float LogProb);

/// <summary>The log-probability of a chosen token and the most likely alternatives at that step.</summary>
/// <param name="Token">The chosen token.</param>
/// <param name="LogProb">Its natural-log probability under the model.</param>
/// <param name="Top">The most likely tokens at that step, most likely first (as many as asked for).</param>
public sealed record TokenLogProb(int Token, float LogProb, IReadOnlyList<TokenAlternative> Top)
{
    /// <summary>Log-softmax of <paramref name="logits"/> at <paramref name="chosen"/>, with the <paramref name="top"/>
    /// most likely tokens. One pass for the normaliser, one per alternative (top is small: at most 20).</summary>
    internal static TokenLogProb Compute(ReadOnlySpan<float> logits, int chosen, int top)
    {
        float max = float.NegativeInfinity;
        foreach (float l in logits) if (l > max) max = l;
        double sum = 0;
        foreach (float l in logits) sum += Math.Exp(l - max);
        float logZ = max + (float)Math.Log(sum);
        var alternatives = new TokenAlternative[Math.Min(top, logits.Length)];
        for (int k = 0; k < alternatives.Length; k++)
        {
            // The k-th best: the largest logit not already taken (ties go to the lower id, as ArgMax does).
            int best = -1;
            for (int i = 0; i < logits.Length; i++)
            {
                if (best >= 0 && !(logits[i] > logits[best])) continue;
                bool taken = false;
                for (int j = 0; j < k; j++) if (alternatives[j].Token == i) { taken = true; break; }
                if (!taken) best = i;
            }
            alternatives[k] = new TokenAlternative(best, logits[best] - logZ);
        }
        return new TokenLogProb(chosen, logits[chosen] - logZ, alternatives);
    }
}
