namespace Tessera.Quantization;

/// <summary>Q2_K: super-blocks of 256 = { u8 scales[16] (low nibble scale, high nibble min); u8 qs[64]; f16 d; f16 dmin } (84 bytes);
/// 16 sub-blocks of 16; x = d*sc*q - dmin*m.</summary>
internal static unsafe class Q2_K
{
    public const int BlockSize = 256, BlockBytes = 84;

    /// <summary><c>dequantize_row_q2_K</c>.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        float* y = dst;
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            byte* scales = b;
            byte* q = b + 16;
            float d = Fp16.Load(b + 80), min = Fp16.Load(b + 82);
            int isc = 0;
            for (int nn = 0; nn < BlockSize; nn += 128)
            {
                int shift = 0;
                for (int j = 0; j < 4; j++)
                {
                    byte sc = scales[isc++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l] >> shift) & 3) - ml;
                    sc = scales[isc++];
                    dl = d * (sc & 0xF); ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16] >> shift) & 3) - ml;
                    shift += 2;
                }
                q += 32;
            }
        }
    }

    /// <summary><c>ggml_vec_dot_q2_K_q8_K_generic</c>.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        float sumf = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* x = w + i * BlockBytes;
            byte* yb = a + i * Q8_K.BlockBytes;
            byte* q2 = x + 16;
            sbyte* q8 = (sbyte*)(yb + Q8_K.QsOffset);
            short* bsums = (short*)(yb + Q8_K.BsumsOffset);
            byte* sc = x;
            int summs = 0;
            for (int j = 0; j < 16; j++) summs += bsums[j] * (sc[j] >> 4);
            float yd = *(float*)yb;
            float dall = yd * Fp16.Load(x + 80);
            float dmin = yd * Fp16.Load(x + 82);
            int isum = 0, isc = 0;
            for (int k = 0; k < BlockSize / 128; k++)
            {
                int shift = 0;
                for (int j = 0; j < 4; j++)
                {
                    int d = sc[isc++] & 0xF;
                    int isuml = 0;
                    for (int l = 0; l < 16; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += d * isuml;
                    d = sc[isc++] & 0xF;
                    isuml = 0;
                    for (int l = 16; l < 32; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += d * isuml;
                    shift += 2;
                    q8 += 32;
                }
                q2 += 32;
            }
            sumf += dall * isum - dmin * summs;
        }
        return sumf;
    }

    /// <summary>Best available Q2_K x Q8_K dot product (scalar for now).</summary>
    public static float Dot(byte* w, byte* a, int n) => DotScalar(w, a, n);
}
