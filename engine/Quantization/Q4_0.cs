using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>Q4_0: blocks of 32 = { f16 d; u8 qs[16] } (18 bytes); element j is the low nibble of qs[j], element j+16 the high one; x = d * (q - 8).</summary>
internal static unsafe class Q4_0
{
    public const int BlockSize = 32, BlockBytes = 18;

    /// <summary><c>dequantize_row_q4_0</c>.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            float d = Fp16.Load(b);
            float* y = dst + i * BlockSize;
            for (int j = 0; j < 16; j++)
            {
                y[j] = ((b[2 + j] & 0x0F) - 8) * d;
                y[j + 16] = ((b[2 + j] >> 4) - 8) * d;
            }
        }
    }

    /// <summary><c>ggml_vec_dot_q4_0_q8_0_generic</c>.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        float sumf = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_0.BlockBytes;
            sbyte* y = (sbyte*)(yb + 2);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi0 += ((x[2 + j] & 0x0F) - 8) * y[j];
                sumi1 += ((x[2 + j] >> 4) - 8) * y[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += sumi * Fp16.Load(x) * Fp16.Load(yb);
        }
        return sumf;
    }

    /// <summary>Best available Q4_0 x Q8_0 dot product.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(byte* w, byte* a, int n) => SimdHelpers.Avx2Fma ? DotAvx2(w, a, n) : DotScalar(w, a, n);

    internal static float DotAvx2(byte* w, byte* a, int n)
    {
        int nb = n / BlockSize;
        Vector256<float> acc = Vector256<float>.Zero;
        Vector256<byte> eight = Vector256.Create((byte)8);
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* y = a + i * Q8_0.BlockBytes;
            Sse.Prefetch0(x + DecodePrefetch.StreamBytes); // decode streams the weights (see DecodePrefetch)
            // q in 0..15 unsigned times y, minus 8 * y: keep it as (q - 8) signed with the sign trick, as ggml does.
            Vector256<sbyte> xq = (SimdHelpers.Nibbles16(x + 2) - eight).AsSByte();
            Vector256<int> s = SimdHelpers.DotI8I8(xq, Vector256.Load((sbyte*)(y + 2)));
            acc = Fma.MultiplyAdd(Vector256.Create(Fp16.Load(x) * Fp16.Load(y)), Avx.ConvertToVector256Single(s), acc);
        }
        return SimdHelpers.HSum(acc);
    }
}
