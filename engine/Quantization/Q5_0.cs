using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>Q5_0: blocks of 32 = { f16 d; u8 qh[4]; u8 qs[16] } (22 bytes); bit j of qh is the fifth bit of element j; x = d * (q - 16).</summary>
internal static unsafe class Q5_0
{
    public const int BlockSize = 32, BlockBytes = 22;

    /// <summary><c>dequantize_row_q5_0</c>.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            float d = Fp16.Load(b);
            uint qh = Unsafe.ReadUnaligned<uint>(b + 2);
            float* y = dst + i * BlockSize;
            for (int j = 0; j < 16; j++)
            {
                uint xh0 = ((qh >> j) << 4) & 0x10;
                uint xh1 = (qh >> (j + 12)) & 0x10;
                int x0 = (int)((b[6 + j] & 0x0Fu) | xh0) - 16;
                int x1 = (int)((uint)(b[6 + j] >> 4) | xh1) - 16;
                y[j] = x0 * d;
                y[j + 16] = x1 * d;
            }
        }
    }

    /// <summary><c>ggml_vec_dot_q5_0_q8_0_generic</c>.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        float sumf = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_0.BlockBytes;
            sbyte* y = (sbyte*)(yb + 2);
            uint qh = Unsafe.ReadUnaligned<uint>(x + 2);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                uint xh0 = ((qh >> j) << 4) & 0x10;
                uint xh1 = (qh >> (j + 12)) & 0x10;
                int x0 = (int)((x[6 + j] & 0x0Fu) | xh0) - 16;
                int x1 = (int)((uint)(x[6 + j] >> 4) | xh1) - 16;
                sumi0 += x0 * y[j];
                sumi1 += x1 * y[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += (Fp16.Load(x) * Fp16.Load(yb)) * sumi;
        }
        return sumf;
    }

    /// <summary>Best available Q5_0 x Q8_0 dot product.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(byte* w, byte* a, int n) => SimdHelpers.Avx2Fma ? DotAvx2(w, a, n) : DotScalar(w, a, n);

    internal static float DotAvx2(byte* w, byte* a, int n)
    {
        int nb = n / BlockSize;
        Vector256<float> acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* y = a + i * Q8_0.BlockBytes;
            // q - 16 = nibble - (fifth bit clear ? 16 : 0): OR 0xF0 into the nibble where the bit is clear.
            Vector256<byte> hi = ~SimdHelpers.BytesFromBits(Unsafe.ReadUnaligned<uint>(x + 2)) & Vector256.Create((byte)0xF0);
            Vector256<sbyte> xq = (SimdHelpers.Nibbles16(x + 6) | hi).AsSByte();
            Vector256<int> s = SimdHelpers.DotI8I8(xq, Vector256.Load((sbyte*)(y + 2)));
            acc = Fma.MultiplyAdd(Vector256.Create(Fp16.Load(x) * Fp16.Load(y)), Avx.ConvertToVector256Single(s), acc);
        }
        return SimdHelpers.HSum(acc);
    }
}
