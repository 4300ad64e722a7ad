using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>IQ4_NL: blocks of 32 = { f16 d; u8 qs[16] } (18 bytes); x = d * kvalues_iq4nl[nibble], nibble order as Q4_0.</summary>
internal static unsafe class IQ4_NL
{
    public const int BlockSize = 32, BlockBytes = 18;

    /// <summary><c>kvalues_iq4nl</c>.</summary>
    internal static ReadOnlySpan<sbyte> Values => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    /// <summary><c>dequantize_row_iq4_nl</c>.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        ReadOnlySpan<sbyte> kv = Values;
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            float d = Fp16.Load(b);
            float* y = dst + i * BlockSize;
            for (int j = 0; j < 16; j++)
            {
                y[j] = d * kv[b[2 + j] & 0x0F];
                y[j + 16] = d * kv[b[2 + j] >> 4];
            }
        }
    }

    /// <summary><c>ggml_vec_dot_iq4_nl_q8_0_generic</c>.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        ReadOnlySpan<sbyte> kv = Values;
        float sumf = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_0.BlockBytes;
            sbyte* y = (sbyte*)(yb + 2);
            float d = Fp16.Load(yb) * Fp16.Load(x);
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi1 += y[j] * kv[x[2 + j] & 0x0F];
                sumi2 += y[j + 16] * kv[x[2 + j] >> 4];
            }
            sumf += d * (sumi1 + sumi2);
        }
        return sumf;
    }

    /// <summary>Best available IQ4_NL x Q8_0 dot product.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(byte* w, byte* a, int n) => SimdHelpers.Avx2Fma ? DotAvx2(w, a, n) : DotScalar(w, a, n);

    internal static float DotAvx2(byte* w, byte* a, int n)
    {
        int nb = n / BlockSize;
        Vector128<sbyte> t = Vector128.Create(Values);
        Vector256<sbyte> table = Vector256.Create(t, t);
        Vector256<float> acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* y = a + i * Q8_0.BlockBytes;
            Vector256<sbyte> xq = Avx2.Shuffle(table, SimdHelpers.Nibbles16(x + 2).AsSByte());
            Vector256<int> s = SimdHelpers.DotI8I8(xq, Vector256.Load((sbyte*)(y + 2)));
            acc = Fma.MultiplyAdd(Vector256.Create(Fp16.Load(y) * Fp16.Load(x)), Avx.ConvertToVector256Single(s), acc);
        }
        return SimdHelpers.HSum(acc);
    }
}
