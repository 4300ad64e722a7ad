namespace Tessera.Sampling.Processors;

/// <summary>
/// llama.cpp's repetition, frequency and presence penalties over the last <see cref="SamplingOptions.PenaltyWindow"/>
/// tokens: a repeated token's positive logit is divided by the repetition penalty (a negative one multiplied), then
/// its count times the frequency penalty and, once, the presence penalty are subtracted.
/// </summary>
public sealed class RepetitionPenalties(SamplingOptions options) : ILogitsProcessor
{
    private readonly Dictionary<int, int> _counts = new();
    private readonly Queue<int> _recent = new();

    /// <summary>Whether <paramref name="options"/> penalize anything (else the stage is left out).</summary>
    public static bool Applies(SamplingOptions options) => options.PenaltyWindow > 0
        && (options.RepetitionPenalty != 1 || options.FrequencyPenalty != 0 || options.PresencePenalty != 0);

    /// <inheritdoc/>
    public void Accept(int token)
    {
        _recent.Enqueue(token);
        _counts[token] = _counts.GetValueOrDefault(token) + 1;
        if (_recent.Count > options.PenaltyWindow)
        {
            int old = _recent.Dequeue();
            if (--_counts[old] == 0) _counts.Remove(old);
        }
    }

    /// <inheritdoc/>
    public void Process(Span<float> logits)
    {
        foreach (var (token, count) in _counts)
        {
            if ((uint)token >= (uint)logits.Length) continue;
            ref float l = ref logits[token];
            l = l <= 0 ? l * options.RepetitionPenalty : l / options.RepetitionPenalty;
            l -= count * options.FrequencyPenalty + options.PresencePenalty;
        }
    }
}
