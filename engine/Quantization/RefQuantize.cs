namespace Tessera.Quantization;

/// <summary>
/// Ports of llama.cpp's <c>quantize_row_*_ref</c> for the 32-element block types (ggml-quants.c), the functions
/// <c>llama-quantize</c> uses when no importance matrix is given. Floating-point operations are kept in the same
/// order as the C code so that the same input gives the same bytes.
/// </summary>
internal static unsafe class RefQuantize
{
    /// <summary><c>quantize_row_q8_0_ref</c>: d = amax/127, q = roundf(x * (1/d)) (ties away from zero).</summary>
    /// <remarks>Not <see cref="Q8_0.Quantize"/>: that one is the x86 activation quantizer (ties to even, 127/amax),
    /// which llama.cpp uses for activations but not when it writes model files.</remarks>
    public static void Q8_0(float* x, byte* y, long k)
    {
        for (long i = 0; i < k / 32; i++)
        {
            float* xb = x + i * 32;
            byte* b = y + i * Quantization.Q8_0.BlockBytes;
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(xb[j]));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            Fp16.Store(b, d);
            sbyte* qs = (sbyte*)(b + 2);
            for (int j = 0; j < 32; j++) qs[j] = (sbyte)MathF.Round(xb[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary><c>quantize_row_q4_0_ref</c>: d = max / -8 where max is the value of largest magnitude (sign kept),
    /// q = min(15, (int8)(x/d + 8.5)).</summary>
    public static void Q4_0(float* x, byte* y, long k)
    {
        for (long i = 0; i < k / 32; i++)
        {
            float* xb = x + i * 32;
            byte* b = y + i * Quantization.Q4_0.BlockBytes;
            SignedMax(xb, out float max);
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            Fp16.Store(b, d);
            for (int j = 0; j < 16; j++)
            {
                float x0 = xb[j] * id, x1 = xb[16 + j] * id;
                int xi0 = Math.Min(15, (int)(sbyte)(x0 + 8.5f));
                int xi1 = Math.Min(15, (int)(sbyte)(x1 + 8.5f));
                b[2 + j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    /// <summary><c>quantize_row_q5_0_ref</c>: d = max / -16, q = min(31, (int8)(x/d + 16.5)); the fifth bits go to qh.
    /// Needed where llama.cpp falls back from Q4_K on rows that are not a multiple of 256.</summary>
    public static void Q5_0(float* x, byte* y, long k)
    {
        for (long i = 0; i < k / 32; i++)
        {
            float* xb = x + i * 32;
            byte* b = y + i * Quantization.Q5_0.BlockBytes;
            SignedMax(xb, out float max);
            float d = max / -16;
            float id = d != 0 ? 1.0f / d : 0.0f;
            Fp16.Store(b, d);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                float x0 = xb[j] * id, x1 = xb[16 + j] * id;
                int xi0 = Math.Min(31, (int)(sbyte)(x0 + 16.5f));
                int xi1 = Math.Min(31, (int)(sbyte)(x1 + 16.5f));
                b[6 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= (uint)((xi0 & 0x10) >> 4) << j;
                qh |= (uint)((xi1 & 0x10) >> 4) << (j + 16);
            }
            System.Runtime.CompilerServices.Unsafe.WriteUnaligned(b + 2, qh); // little-endian, as memcpy on x86/ARM
        }
    }

    /// <summary>The element of largest magnitude, keeping its sign; the first one wins ties, as in the C loop.</summary>
    private static void SignedMax(float* xb, out float max)
    {
        float amax = 0;
        max = 0;
        for (int j = 0; j < 32; j++)
        {
            float v = xb[j];
            if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
        }
    }
}
