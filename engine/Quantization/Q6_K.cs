using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>Q6_K: super-blocks of 256 = { u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d } (210 bytes);
/// 16 sub-blocks of 16; x = d * sc * (q - 32).</summary>
internal static unsafe class Q6_K
{
    public const int BlockSize = 256, BlockBytes = 210;

    /// <summary><c>dequantize_row_q6_K</c> (note ggml's evaluation order: (d * sc) * q).</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            float d = Fp16.Load(b + 208);
            byte* ql = b;
            byte* qh = b + 128;
            sbyte* sc = (sbyte*)(b + 192);
            float* y = dst + i * BlockSize;
            for (int nn = 0; nn < BlockSize; nn += 128)
            {
                for (int l = 0; l < 32; l++)
                {
                    int isc = l / 16;
                    int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l + 0] = d * sc[isc + 0] * q1;
                    y[l + 32] = d * sc[isc + 2] * q2;
                    y[l + 64] = d * sc[isc + 4] * q3;
                    y[l + 96] = d * sc[isc + 6] * q4;
                }
                y += 128; ql += 64; qh += 32; sc += 8;
            }
        }
    }

    /// <summary><c>ggml_vec_dot_q6_K_q8_K_generic</c>, including its 8-lane float accumulation order.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        sbyte* aux8 = stackalloc sbyte[BlockSize];
        float* sums = stackalloc float[8];
        int* aux32 = stackalloc int[8];
        for (int l = 0; l < 8; l++) sums[l] = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_K.BlockBytes;
            byte* q4 = x;
            byte* qh = x + 128;
            sbyte* xsc = (sbyte*)(x + 192);
            sbyte* q8 = (sbyte*)(yb + Q8_K.QsOffset);
            for (int l = 0; l < 8; l++) aux32[l] = 0;
            sbyte* ap = aux8;
            for (int j = 0; j < BlockSize; j += 128)
            {
                for (int l = 0; l < 32; l++)
                {
                    ap[l + 0] = (sbyte)(((q4[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                    ap[l + 32] = (sbyte)(((q4[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    ap[l + 64] = (sbyte)(((q4[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    ap[l + 96] = (sbyte)(((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
                ap += 128; q4 += 64; qh += 32;
            }
            ap = aux8;
            for (int j = 0; j < 16; j++)
            {
                int scale = xsc[j];
                for (int k = 0; k < 2; k++)
                {
                    for (int l = 0; l < 8; l++) aux32[l] += scale * (short)(q8[l] * ap[l]);
                    q8 += 8; ap += 8;
                }
            }
            float d = Fp16.Load(x + 208) * *(float*)yb;
            for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
        }
        float sumf = 0;
        for (int l = 0; l < 8; l++) sumf += sums[l];
        return sumf;
    }

    /// <summary>Best available Q6_K x Q8_K dot product.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(byte* w, byte* a, int n) => SimdHelpers.Avx2Fma ? DotAvx2(w, a, n) : DotScalar(w, a, n);

    internal static float DotAvx2(byte* w, byte* a, int n)
    {
        Vector256<float> acc = Vector256<float>.Zero;
        Vector256<byte> m4 = Vector256.Create((byte)0x0F), m30 = Vector256.Create((byte)0x30);
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_K.BlockBytes;
            sbyte* sc = (sbyte*)(x + 192);
            sbyte* q8 = (sbyte*)(yb + Q8_K.QsOffset);

            // (q - 32) * y summed = q * y summed - 32 * bsum: q is unsigned 0..63, so vpmaddubsw cannot saturate.
            Vector256<short> sc16 = Avx2.ConvertToVector256Int16(Vector128.Load(sc));
            int offset = 32 * SimdHelpers.HSum(Avx2.MultiplyAddAdjacent(sc16, Vector256.Load((short*)(yb + Q8_K.BsumsOffset))));

            Vector256<int> isum = Vector256<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                byte* ql = x + 64 * h;
                Vector256<byte> qh = Vector256.Load(x + 128 + 32 * h);
                Vector256<byte> l0 = Vector256.Load(ql), l1 = Vector256.Load(ql + 32);
                Vector256<byte> q1 = (l0 & m4) | (Vector256.ShiftLeft(qh.AsUInt16(), 4).AsByte() & m30);
                Vector256<byte> q2 = (l1 & m4) | (Vector256.ShiftLeft(qh.AsUInt16(), 2).AsByte() & m30);
                Vector256<byte> q3 = (Vector256.ShiftRightLogical(l0.AsUInt16(), 4).AsByte() & m4) | (qh & m30);
                Vector256<byte> q4 = (Vector256.ShiftRightLogical(l1.AsUInt16(), 4).AsByte() & m4) | (Vector256.ShiftRightLogical(qh.AsUInt16(), 2).AsByte() & m30);
                sbyte* y = q8 + 128 * h;
                sbyte* s = sc + 8 * h;
                isum += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1, Vector256.Load(y)), Scales(s[0], s[1]));
                isum += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q2, Vector256.Load(y + 32)), Scales(s[2], s[3]));
                isum += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q3, Vector256.Load(y + 64)), Scales(s[4], s[5]));
                isum += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q4, Vector256.Load(y + 96)), Scales(s[6], s[7]));
            }
            float d = Fp16.Load(x + 208) * *(float*)yb;
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(isum - Vector256.CreateScalar(offset)), acc);
        }
        return SimdHelpers.HSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Scales(sbyte lo, sbyte hi) => Vector256.Create(Vector128.Create((short)lo), Vector128.Create((short)hi));
}
