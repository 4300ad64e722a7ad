namespace Tessera.Backends;

/// <summary>
/// How RoPE turns a position into the angle of each rotated pair, for one layer: pair i of a head at position p turns
/// by <c>p · Theta^(−2i/d) / Factors[i] · FreqScale</c>, and the rotated values are multiplied by
/// <see cref="AttnFactor"/>: ggml's <c>rope_ext</c> without YaRN's ramp. The plain case (<c>new(theta)</c>) is
/// Llama 2's RoPE; per-pair factors are Llama 3.1's <c>rope_freqs</c> and Phi-3's LongRoPE short/long factors, the
/// linear scale is a <c>rope.scaling.type = linear</c> model's 1/factor (Gemma 3 4B+ on its global layers), the
/// magnitude is Phi-3's LongRoPE attention factor.
/// </summary>
/// <param name="Theta">Base frequency.</param>
/// <param name="FreqScale">Multiplies every angle (linear position interpolation); 1 for none.</param>
/// <param name="Factors">Per-pair divisors of the angle, (head_dim / 2), prepared on the backend; null for none.</param>
/// <param name="AttnFactor">Multiplies cos and sin (so q·k by its square); 1 for none.</param>
public readonly record struct RopeFrequencies(float Theta, float FreqScale = 1f, BackendVector? Factors = null, float AttnFactor = 1f)
{
    /// <summary>Throws naming the op when the numbers cannot rotate a head of <paramref name="headDim"/>.</summary>
    public void Check(int headDim, string op)
    {
        if (!(Theta > 0) || !float.IsFinite(Theta)) throw new ArgumentOutOfRangeException(nameof(Theta), Theta, $"{op}: the RoPE base must be positive");
        if (!(FreqScale > 0) || !float.IsFinite(FreqScale)) throw new ArgumentOutOfRangeException(nameof(FreqScale), FreqScale, $"{op}: the RoPE frequency scale must be positive");
        if (!(AttnFactor > 0) || !float.IsFinite(AttnFactor)) throw new ArgumentOutOfRangeException(nameof(AttnFactor), AttnFactor, $"{op}: the RoPE attention factor must be positive");
        if (Factors is { } f && f.Length != headDim / 2)
            throw new ArgumentException($"{op}: {f.Length} RoPE factors for a head of {headDim} (need {headDim / 2})", nameof(Factors));
    }
}
