namespace Tessera.Sampling.Processors;

/// <summary>
/// OpenAI's and llama.cpp's <c>logit_bias</c>: a fixed amount added to chosen tokens' logits before the draw
/// (<see cref="SamplingOptions.LogitBias"/>). -100 in practice bans a token and +100 forces it; negative infinity
/// bans it outright. The biases are copied into arrays once: applying them is one pass over the chosen tokens.
/// </summary>
public sealed class LogitBias : ILogitsProcessor
{
    private readonly int[] _tokens;
    private readonly float[] _bias;

    /// <summary>The stage for <paramref name="bias"/> over a vocabulary of <paramref name="vocabSize"/> tokens.</summary>
    /// <exception cref="ArgumentException">A token is outside the vocabulary or a bias is NaN or positive infinity.</exception>
    public LogitBias(IReadOnlyDictionary<int, float> bias, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(bias);
        _tokens = new int[bias.Count];
        _bias = new float[bias.Count];
        int i = 0;
        foreach (var (token, b) in bias.OrderBy(p => p.Key))
        {
            if ((uint)token >= (uint)vocabSize)
                throw new ArgumentException($"--logit-bias: token {token} is outside the vocabulary (0..{vocabSize - 1})", "logit-bias");
            if (float.IsNaN(b) || float.IsPositiveInfinity(b))
                throw new ArgumentException($"--logit-bias: the bias of token {token} is {b}; give a number (or -inf to ban it)", "logit-bias");
            _tokens[i] = token;
            _bias[i++] = b;
        }
    }

    /// <inheritdoc/>
    public void Process(Span<float> logits)
    {
        for (int i = 0; i < _tokens.Length; i++) logits[_tokens[i]] += _bias[i];
    }

    /// <inheritdoc/>
    public void Accept(int token) { }
}
