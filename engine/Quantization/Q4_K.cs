using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>Q4_K: super-blocks of 256 = { f16 d; f16 dmin; u8 scales[12] (8 six-bit scales + 8 six-bit mins); u8 qs[128] } (144 bytes);
/// 8 sub-blocks of 32; each 32 bytes of qs hold two sub-blocks (low nibbles, then high nibbles); x = d*sc*q - dmin*m.</summary>
internal static unsafe class Q4_K
{
    public const int BlockSize = 256, BlockBytes = 144;

    /// <summary>ggml's <c>get_scale_min_k4</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void GetScaleMin(int j, byte* q, out byte d, out byte m)
    {
        if (j < 4)
        {
            d = (byte)(q[j] & 63);
            m = (byte)(q[j + 4] & 63);
        }
        else
        {
            d = (byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            m = (byte)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
        }
    }

    /// <summary>The 12 packed bytes as 8 scales (utmp[0..1]) and 8 mins (utmp[2..3]), ggml's kmask shuffle.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScales(byte* packed, uint* utmp)
    {
        const uint kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
        uint u0 = Unsafe.ReadUnaligned<uint>(packed), u1 = Unsafe.ReadUnaligned<uint>(packed + 4), u2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        utmp[3] = ((u2 >> 4) & kmask2) | (((u1 >> 6) & kmask3) << 4);
        uint uaux = u1 & kmask1;
        utmp[1] = (u2 & kmask2) | (((u0 >> 6) & kmask3) << 4);
        utmp[2] = uaux;
        utmp[0] = u0 & kmask1;
    }

    /// <summary><c>dequantize_row_q4_K</c>.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        float* y = dst;
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            byte* q = b + 16;
            float d = Fp16.Load(b), min = Fp16.Load(b + 2);
            int isc = 0;
            for (int j = 0; j < BlockSize; j += 64)
            {
                GetScaleMin(isc + 0, b + 4, out byte sc, out byte m);
                float d1 = d * sc, m1 = min * m;
                GetScaleMin(isc + 1, b + 4, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
                q += 32; isc += 2;
            }
        }
    }

    /// <summary><c>ggml_vec_dot_q4_K_q8_K_generic</c>, including its 8-lane float accumulation order.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        uint* utmp = stackalloc uint[4];
        byte* scales = (byte*)utmp;
        byte* mins = (byte*)(utmp + 2);
        sbyte* aux8 = stackalloc sbyte[BlockSize];
        float* sums = stackalloc float[8];
        int* aux32 = stackalloc int[8];
        for (int l = 0; l < 8; l++) sums[l] = 0;
        float sumf = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_K.BlockBytes;
            byte* q4 = x + 16;
            sbyte* q8 = (sbyte*)(yb + Q8_K.QsOffset);
            short* bsums = (short*)(yb + Q8_K.BsumsOffset);
            for (int l = 0; l < 8; l++) aux32[l] = 0;
            sbyte* ap = aux8;
            for (int j = 0; j < BlockSize / 64; j++)
            {
                for (int l = 0; l < 32; l++) ap[l] = (sbyte)(q4[l] & 0xF);
                ap += 32;
                for (int l = 0; l < 32; l++) ap[l] = (sbyte)(q4[l] >> 4);
                ap += 32; q4 += 32;
            }
            UnpackScales(x + 4, utmp);
            int sumi = 0;
            for (int j = 0; j < 16; j++) sumi += bsums[j] * mins[j / 2];
            ap = aux8;
            for (int j = 0; j < BlockSize / 32; j++)
            {
                int scale = scales[j];
                for (int k = 0; k < 4; k++)
                {
                    for (int l = 0; l < 8; l++) aux32[l] += scale * (short)(q8[l] * ap[l]);
                    q8 += 8; ap += 8;
                }
            }
            float yd = *(float*)yb;
            float d = Fp16.Load(x) * yd;
            for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
            float dmin = Fp16.Load(x + 2) * yd;
            sumf -= dmin * sumi;
        }
        for (int l = 0; l < 8; l++) sumf += sums[l];
        return sumf;
    }

    /// <summary>Best available Q4_K x Q8_K dot product.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(byte* w, byte* a, int n) => SimdHelpers.Avx2Fma ? DotAvx2(w, a, n) : DotScalar(w, a, n);

    internal static float DotAvx2(byte* w, byte* a, int n)
    {
        uint* utmp = stackalloc uint[4];
        byte* scales = (byte*)utmp;
        byte* mins = (byte*)(utmp + 2);
        Vector256<float> acc = Vector256<float>.Zero;
        float summ = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_K.BlockBytes;
            byte* q4 = x + 16;
            sbyte* q8 = (sbyte*)(yb + Q8_K.QsOffset);
            short* bsums = (short*)(yb + Q8_K.BsumsOffset);
            UnpackScales(x + 4, utmp);

            // mins: sum over 16-groups of bsums * mins[j/2] = madd(pairwise-summed bsums, mins).
            Vector256<short> bs = Vector256.Load(bsums);
            Vector128<byte> m8 = Vector128.CreateScalar(*(ulong*)mins).AsByte();
            Vector256<short> mins2 = Avx2.ConvertToVector256Int16(Sse2.UnpackLow(m8, m8)); // lane j = mins[j/2]
            int sumMins = SimdHelpers.HSum(Avx2.MultiplyAddAdjacent(bs, mins2));

            Vector256<int> isum = Vector256<int>.Zero;
            for (int j = 0; j < 4; j++)
            {
                var (lo, hi) = SimdHelpers.Nibbles32(q4 + 32 * j);
                Vector256<short> p0 = Avx2.MultiplyAddAdjacent(lo, Vector256.Load(q8 + 64 * j));
                Vector256<short> p1 = Avx2.MultiplyAddAdjacent(hi, Vector256.Load(q8 + 64 * j + 32));
                isum += Avx2.MultiplyAddAdjacent(p0, Vector256.Create((short)scales[2 * j]));
                isum += Avx2.MultiplyAddAdjacent(p1, Vector256.Create((short)scales[2 * j + 1]));
            }
            float yd = *(float*)yb;
            acc = Fma.MultiplyAdd(Vector256.Create(Fp16.Load(x) * yd), Avx.ConvertToVector256Single(isum), acc);
            summ += Fp16.Load(x + 2) * yd * sumMins;
        }
        return SimdHelpers.HSum(acc) - summ;
    }
}
