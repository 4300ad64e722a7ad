using System.Runtime.CompilerServices;

namespace Tessera.Quantization;

/// <summary>Q3_K: super-blocks of 256 = { u8 hmask[32]; u8 qs[64]; u8 scales[12] (16 six-bit scales); f16 d } (110 bytes);
/// x = d * (sc - 32) * (q - (high bit set ? 0 : 4)).</summary>
internal static unsafe class Q3_K
{
    public const int BlockSize = 256, BlockBytes = 110;

    /// <summary>Unpacks the 12 scale bytes into 16 signed bytes still offset by 32 (ggml's kmask1/kmask2 shuffle).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScales(byte* packed, uint* aux)
    {
        const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        uint a0 = Unsafe.ReadUnaligned<uint>(packed), a1 = Unsafe.ReadUnaligned<uint>(packed + 4), tmp = Unsafe.ReadUnaligned<uint>(packed + 8);
        aux[2] = ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        aux[0] = (a0 & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4);
    }

    /// <summary><c>dequantize_row_q3_K</c>.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        uint* aux = stackalloc uint[4];
        sbyte* scales = (sbyte*)aux;
        float* y = dst;
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            float dAll = Fp16.Load(b + 108);
            byte* q = b + 32;
            byte* hm = b;
            byte m = 1;
            UnpackScales(b + 96, aux);
            int isc = 0;
            for (int nn = 0; nn < BlockSize; nn += 128)
            {
                int shift = 0;
                for (int j = 0; j < 4; j++)
                {
                    float dl = dAll * (scales[isc++] - 32);
                    for (int l = 0; l < 16; l++) *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    dl = dAll * (scales[isc++] - 32);
                    for (int l = 0; l < 16; l++) *y++ = dl * (((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) != 0 ? 0 : 4));
                    shift += 2;
                    m <<= 1;
                }
                q += 32;
            }
        }
    }

    /// <summary><c>ggml_vec_dot_q3_K_q8_K_generic</c>, including its 8-lane float accumulation order.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        sbyte* aux8 = stackalloc sbyte[BlockSize];
        short* aux16 = stackalloc short[8];
        float* sums = stackalloc float[8];
        int* aux32 = stackalloc int[8];
        uint* auxs = stackalloc uint[4];
        sbyte* scales = (sbyte*)auxs;
        for (int l = 0; l < 8; l++) sums[l] = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_K.BlockBytes;
            byte* q3 = x + 32;
            byte* hm = x;
            sbyte* q8 = (sbyte*)(yb + Q8_K.QsOffset);
            for (int l = 0; l < 8; l++) aux32[l] = 0;
            sbyte* ap = aux8;
            byte m = 1;
            for (int j = 0; j < BlockSize; j += 128)
            {
                for (int shift = 0; shift < 8; shift += 2)
                {
                    for (int l = 0; l < 32; l++) ap[l] = (sbyte)(((q3[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    ap += 32; m <<= 1;
                }
                q3 += 32;
            }
            ap = aux8;
            UnpackScales(x + 96, auxs);
            for (int j = 0; j < 16; j++)
            {
                for (int half = 0; half < 2; half++)
                {
                    for (int l = 0; l < 8; l++) aux16[l] = (short)(q8[l] * ap[l]);
                    for (int l = 0; l < 8; l++) aux32[l] += (scales[j] - 32) * aux16[l];
                    q8 += 8; ap += 8;
                }
            }
            float d = Fp16.Load(x + 108) * *(float*)yb;
            for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
        }
        float sumf = 0;
        for (int l = 0; l < 8; l++) sumf += sums[l];
        return sumf;
    }

    /// <summary>Best available Q3_K x Q8_K dot product (scalar for now).</summary>
    public static float Dot(byte* w, byte* a, int n) => DotScalar(w, a, n);
}
