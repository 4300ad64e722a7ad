namespace Tessera.Model;

/// <summary>RoPE's per-pair factors as the converters compute them from a config's <c>rope_scaling</c>.</summary>
public static class RopeScalingFactors
{
    /// <summary>
    /// Llama 3.1's rule (<c>rope_type: llama3</c>; llama.cpp's converter writes the result as <c>rope_freqs</c>): pairs
    /// whose wavelength is shorter than original/high keep their frequency (1), those longer than original/low are
    /// slowed by <paramref name="factor"/>, those between by a blend; (headDim / 2) divisors of the angle.
    /// </summary>
    public static float[] Llama3(int headDim, float theta, double factor, double lowFreqFactor, double highFreqFactor, int originalContext)
    {
        var result = new float[headDim / 2];
        double lowWavelen = originalContext / lowFreqFactor, highWavelen = originalContext / highFreqFactor;
        for (int i = 0; i < result.Length; i++)
        {
            // As the converter: the frequency in float32 (torch), the rest in double (Python floats).
            float freq = 1.0f / MathF.Pow(theta, 2 * i / (float)headDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) result[i] = 1f;
            else if (wavelen > lowWavelen) result[i] = (float)factor;
            else
            {
                double smooth = (originalContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                result[i] = (float)(1 / ((1 - smooth) / factor + smooth));
            }
        }
        return result;
    }

    /// <summary>LongRoPE's attention factor for a context extended from <paramref name="originalContext"/> to
    /// <paramref name="context"/>: √(1 + ln(scale) / ln(original)), 1 when not extended (Phi-3's converter and
    /// transformers).</summary>
    public static float LongRopeAttnFactor(int context, int originalContext)
    {
        double scale = context / (double)originalContext;
        return scale > 1 ? (float)Math.Sqrt(1 + Math.Log(scale) / Math.Log(originalContext)) : 1f;
    }
}
