namespace Tessera.Quantization;

/// <summary>Q5_K: super-blocks of 256 = { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] } (176 bytes);
/// as Q4_K plus a fifth bit per weight in qh; x = d*sc*q - dmin*m.</summary>
internal static unsafe class Q5_K
{
    public const int BlockSize = 256, BlockBytes = 176;

    /// <summary><c>dequantize_row_q5_K</c>.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        float* y = dst;
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            byte* ql = b + 48;
            byte* qh = b + 16;
            float d = Fp16.Load(b), min = Fp16.Load(b + 2);
            int isc = 0;
            byte u1 = 1, u2 = 2;
            for (int j = 0; j < BlockSize; j += 64)
            {
                Q4_K.GetScaleMin(isc + 0, b + 4, out byte sc, out byte m);
                float d1 = d * sc, m1 = min * m;
                Q4_K.GetScaleMin(isc + 1, b + 4, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
                ql += 32; isc += 2;
                u1 <<= 2; u2 <<= 2;
            }
        }
    }

    /// <summary><c>ggml_vec_dot_q5_K_q8_K_generic</c>, including its 8-lane float accumulation order.</summary>
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
            byte* q4 = x + 48;
            byte* hm = x + 16;
            sbyte* q8 = (sbyte*)(yb + Q8_K.QsOffset);
            short* bsums = (short*)(yb + Q8_K.BsumsOffset);
            for (int l = 0; l < 8; l++) aux32[l] = 0;
            sbyte* ap = aux8;
            byte m = 1;
            for (int j = 0; j < BlockSize / 64; j++)
            {
                for (int l = 0; l < 32; l++) ap[l] = (sbyte)((q4[l] & 0xF) + ((hm[l] & m) != 0 ? 16 : 0));
                ap += 32; m <<= 1;
                for (int l = 0; l < 32; l++) ap[l] = (sbyte)((q4[l] >> 4) + ((hm[l] & m) != 0 ? 16 : 0));
                ap += 32; m <<= 1;
                q4 += 32;
            }
            Q4_K.UnpackScales(x + 4, utmp);
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

    /// <summary>Best available Q5_K x Q8_K dot product (scalar for now).</summary>
    public static float Dot(byte* w, byte* a, int n) => DotScalar(w, a, n);
}
