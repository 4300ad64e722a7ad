using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>Q4_1: blocks of 32 = { f16 d; f16 m; u8 qs[16] } (20 bytes); x = d * q + m, nibble order as Q4_0.</summary>
internal static unsafe class Q4_1
{
    public const int BlockSize = 32, BlockBytes = 20;

    /// <summary><c>dequantize_row_q4_1</c>.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            float d = Fp16.Load(b), m = Fp16.Load(b + 2);
            float* y = dst + i * BlockSize;
            for (int j = 0; j < 16; j++)
            {
                y[j] = (b[4 + j] & 0x0F) * d + m;
                y[j + 16] = (b[4 + j] >> 4) * d + m;
            }
        }
    }

    /// <summary><c>ggml_vec_dot_q4_1_q8_1_generic</c>.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        float sumf = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_1.BlockBytes;
            sbyte* y = (sbyte*)(yb + 4);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi0 += (x[4 + j] & 0x0F) * y[j];
                sumi1 += (x[4 + j] >> 4) * y[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += (Fp16.Load(x) * Fp16.Load(yb)) * sumi + Fp16.Load(x + 2) * Fp16.Load(yb + 2);
        }
        return sumf;
    }

    /// <summary>Best available Q4_1 x Q8_1 dot product.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(byte* w, byte* a, int n) => SimdHelpers.Avx2Fma ? DotAvx2(w, a, n) : DotScalar(w, a, n);

    internal static float DotAvx2(byte* w, byte* a, int n)
    {
        int nb = n / BlockSize;
        Vector256<float> acc = Vector256<float>.Zero;
        float summs = 0;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* y = a + i * Q8_1.BlockBytes;
            summs += Fp16.Load(x + 2) * Fp16.Load(y + 2);
            Vector256<int> s = SimdHelpers.DotU8I8(SimdHelpers.Nibbles16(x + 4), Vector256.Load((sbyte*)(y + 4)));
            acc = Fma.MultiplyAdd(Vector256.Create(Fp16.Load(x) * Fp16.Load(y)), Avx.ConvertToVector256Single(s), acc);
        }
        return SimdHelpers.HSum(acc) + summs;
    }
}
