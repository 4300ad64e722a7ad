using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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

    /// <summary><see cref="NearestInt"/> on 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Nearest(Vector256<float> x, Vector256<float> magic)
        => ((x + magic).AsInt32() & Vector256.Create(0x007fffff)) - Vector256.Create(0x00400000);

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
            if (Vector256.IsHardwareAccelerated)
            {
                // The largest magnitude, then the first value that has it: what the scalar scan below keeps.
                Vector256<float> m = Vector256<float>.Zero;
                for (int j = 0; j < BlockSize; j += 8) m = Vector256.Max(m, Vector256.Abs(Vector256.Load(xb + j)));
                Vector128<float> h = Vector128.Max(m.GetLower(), m.GetUpper());
                amax = MathF.Max(MathF.Max(h[0], h[1]), MathF.Max(h[2], h[3]));
                // Eight lanes at a time: the first vector holding it, then its first lane (a scalar scan here took a
                // third of the quantization).
                Vector256<float> va = Vector256.Create(amax);
                for (int j = 0; j < BlockSize; j += 8)
                {
                    uint hit = Vector256.Equals(Vector256.Abs(Vector256.Load(xb + j)), va).ExtractMostSignificantBits();
                    if (hit != 0) { max = xb[j + System.Numerics.BitOperations.TrailingZeroCount(hit)]; break; }
                }
            }
            else
            {
                for (int j = 0; j < BlockSize; j++)
                {
                    float ax = MathF.Abs(xb[j]);
                    if (ax > amax) { amax = ax; max = xb[j]; }
                }
            }
            if (amax == 0)
            {
                *(float*)b = 0;
                new Span<byte>(qs, BlockSize + 32).Clear();
                continue;
            }
            float iscale = -127.0f / max;
            if (Vector256.IsHardwareAccelerated)
            {
                // nearest_int's bit trick on 8 lanes at a time; one group of 16 is one bsum.
                Vector256<float> vs = Vector256.Create(iscale), magic = Vector256.Create(12582912.0f);
                for (int j = 0; j < BlockSize; j += 16)
                {
                    Vector256<int> q0 = Vector256.Min(Nearest(Vector256.Load(xb + j) * vs, magic), Vector256.Create(127));
                    Vector256<int> q1 = Vector256.Min(Nearest(Vector256.Load(xb + j + 8) * vs, magic), Vector256.Create(127));
                    bsums[j / 16] = (short)Vector256.Sum(q0 + q1);
                    Vector128<short> w = Vector128.Narrow(q0.GetLower(), q0.GetUpper()), v = Vector128.Narrow(q1.GetLower(), q1.GetUpper());
                    Vector128.Narrow(w, v).AsSByte().Store(qs + j);
                }
            }
            else
            {
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
