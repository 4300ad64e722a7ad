using System.Runtime.CompilerServices;

namespace Tessera.Quantization;

/// <summary>Q8_K: blocks of 256 = { float d; int8 qs[256]; int16 bsums[16] } (292 bytes). The vec-dot type of every K-quant.</summary>
internal static unsafe class Q8_K
{
    public const int BlockSize = 256, BlockBytes = 292;
    public const int QsOffset = 4, BsumsOffset = 260;

    /// <summary>ggml's <c>nearest_int</c>: round to nearest, ties to even, through the 1.5*2^23 trick (valid for |x| &lt;= 2^22).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int NearestInt(float fval)
    {
        float val = fval + 12582912.0f;
        return (BitConverter.SingleToInt32Bits(val) & 0x007fffff) - 0x00400000;
    }

    /// <summary><c>quantize_row_q8_K_ref</c>: iscale = -127/max where max is the signed value of largest magnitude, q = min(127, nearest_int(iscale*x)),
    /// d = 1/iscale (so d is negative when that value is positive). An all-zero block gets d = 0 and zero quants and sums
    /// (ggml leaves its bsums unwritten there; zero is what they would sum to).</summary>
    public static void Quantize(float* x, byte* dst, int n)
    {
        for (int i = 0; i < n / BlockSize; i++)
        {
            float* xb = x + i * BlockSize;
            byte* b = dst + i * BlockBytes;
            sbyte* qs = (sbyte*)(b + QsOffset);
            short* bsums = (short*)(b + BsumsOffset);
            float max = 0, amax = 0;
            for (int j = 0; j < BlockSize; j++)
            {
                float ax = MathF.Abs(xb[j]);
                if (ax > amax) { amax = ax; max = xb[j]; }
            }
            if (amax == 0)
            {
                *(float*)b = 0;
                new Span<byte>(qs, BlockSize + 32).Clear();
                continue;
            }
            float iscale = -127.0f / max;
            for (int j = 0; j < BlockSize; j++)
            {
                int v = NearestInt(iscale * xb[j]);
                qs[j] = (sbyte)Math.Min(127, v);
            }
            for (int j = 0; j < 16; j++)
            {
                int sum = 0;
                for (int ii = 0; ii < 16; ii++) sum += qs[j * 16 + ii];
                bsums[j] = (short)sum;
            }
            *(float*)b = 1 / iscale;
        }
    }

    /// <summary><c>dequantize_row_q8_K</c> (for tests): x = d * q.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            float d = *(float*)b;
            sbyte* qs = (sbyte*)(b + QsOffset);
            for (int j = 0; j < BlockSize; j++) dst[i * BlockSize + j] = d * qs[j];
        }
    }
}
