namespace Tessera.Quantization;

/// <summary>
/// Ports of llama.cpp's <c>quantize_row_q4_K_ref</c> and <c>quantize_row_q6_K_ref</c> with their helpers
/// (<c>nearest_int</c>, <c>make_qx_quants</c>, <c>make_qkx2_quants</c>) from ggml-quants.c, the path
/// <c>llama-quantize</c> takes without an importance matrix. Operation order follows the C code.
/// </summary>
internal static unsafe class RefQuantizeK
{
    private const float GroupMaxEps = 1e-15f;

    /// <summary>ggml's <c>nearest_int</c>: round to nearest, ties to even, through the float adder (|x| &lt; 2^22).</summary>
    internal static int NearestInt(float fval)
    {
        float val = fval + 12582912.0f;
        int i = BitConverter.SingleToInt32Bits(val);
        return (i & 0x007fffff) - 0x00400000;
    }

    /// <summary><c>make_qx_quants</c> with <c>qw = NULL</c>: symmetric quants L in [0, 2*nmax) and the scale.</summary>
    internal static float MakeQxQuants(int n, int nmax, float* x, sbyte* L, int rmseType)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        if (rmseType == 0)
        {
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * x[i]);
                L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
            }
            return 1 / iscale;
        }
        bool returnEarly = false;
        if (rmseType < 0) { rmseType = -rmseType; returnEarly = true; }
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
            float w = Weight(rmseType, x[i]);
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        if (returnEarly) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                float w = Weight(rmseType, x[i]);
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++)
                {
                    int l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    private static float Weight(int rmseType, float x) => rmseType switch
    {
        1 => x * x,
        2 => 1,
        3 => MathF.Abs(x),
        _ => MathF.Sqrt(MathF.Abs(x)),
    };

    /// <summary><c>make_qkx2_quants</c>: asymmetric quants L in [0, nmax] with a scale (returned) and a min
    /// (<paramref name="theMin"/>, stored negated as ggml does), searching <paramref name="nstep"/> scale candidates.</summary>
    internal static float MakeQkx2Quants(int n, int nmax, float* x, float* weights, byte* L, out float theMin, byte* Laux,
        float rmin, float rdelta, int nstep, bool useMad)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXl = 0;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                Laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXl += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXl - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXl) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * Laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    for (int i = 0; i < n; i++) L[i] = Laux[i];
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary><c>quantize_row_q4_K_ref</c>: per 32-element sub-block an asymmetric 4-bit fit (make_qkx2_quants),
    /// then the 8 scales and 8 mins quantized to 6 bits against the block's largest.</summary>
    public static void Q4_K(float* x, byte* y, long k)
    {
        byte* L = stackalloc byte[256];
        byte* Laux = stackalloc byte[32];
        float* weights = stackalloc float[32];
        float* mins = stackalloc float[8];
        float* scales = stackalloc float[8];
        for (long i = 0; i < k / 256; i++, x += 256)
        {
            byte* b = y + i * Quantization.Q4_K.BlockBytes;
            byte* sc = b + 4;
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 8; j++)
            {
                float sumX2 = 0;
                for (int l = 0; l < 32; l++) sumX2 += x[32 * j + l] * x[32 * j + l];
                float avX = MathF.Sqrt(sumX2 / 32);
                for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(x[32 * j + l]);
                scales[j] = MakeQkx2Quants(32, 15, x + 32 * j, weights, L + 32 * j, out mins[j], Laux, -1f, 0.1f, 20, false);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            float invScale = maxScale > 0 ? 63f / maxScale : 0f;
            float invMin = maxMin > 0 ? 63f / maxMin : 0f;
            for (int j = 0; j < 8; j++)
            {
                byte ls = Math.Min((byte)63, (byte)NearestInt(invScale * scales[j]));
                byte lm = Math.Min((byte)63, (byte)NearestInt(invMin * mins[j]));
                if (j < 4)
                {
                    sc[j] = ls;
                    sc[j + 4] = lm;
                }
                else
                {
                    sc[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                    sc[j - 4] |= (byte)((ls >> 4) << 6);
                    sc[j] |= (byte)((lm >> 4) << 6);
                }
            }
            Fp16.Store(b, maxScale / 63f);
            Fp16.Store(b + 2, maxMin / 63f);
            float d0 = Fp16.Load(b), dmin0 = Fp16.Load(b + 2);
            for (int j = 0; j < 8; j++)
            {
                Quantization.Q4_K.GetScaleMin(j, sc, out byte s, out byte m);
                float d = d0 * s;
                if (d == 0) continue;
                float dm = dmin0 * m;
                for (int ii = 0; ii < 32; ii++)
                {
                    int l = NearestInt((x[32 * j + ii] + dm) / d);
                    L[32 * j + ii] = (byte)Math.Max(0, Math.Min(15, l));
                }
            }
            byte* q = b + 16;
            for (int j = 0; j < 256; j += 64, q += 32)
                for (int l = 0; l < 32; l++) q[l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
        }
    }

    /// <summary><c>quantize_row_q6_K_ref</c>: per 16-element sub-block a symmetric 6-bit fit (make_qx_quants), the
    /// 16 scales as int8 against the block's largest, d = 1/iscale.</summary>
    public static void Q6_K(float* x, byte* y, long k)
    {
        sbyte* L = stackalloc sbyte[256];
        float* scales = stackalloc float[16];
        for (long i = 0; i < k / 256; i++, x += 256)
        {
            byte* b = y + i * Quantization.Q6_K.BlockBytes;
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ib++)
            {
                float scale = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib, 1);
                scales[ib] = scale;
                float abs = MathF.Abs(scale);
                if (abs > maxAbsScale) { maxAbsScale = abs; maxScale = scale; }
            }
            if (maxAbsScale < GroupMaxEps)
            {
                new Span<byte>(b, Quantization.Q6_K.BlockBytes).Clear();
                continue;
            }
            float iscale = -128f / maxScale;
            Fp16.Store(b + 208, 1 / iscale);
            sbyte* sc = (sbyte*)(b + 192);
            for (int ib = 0; ib < 16; ib++) sc[ib] = (sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
            float d0 = Fp16.Load(b + 208);
            for (int j = 0; j < 16; j++)
            {
                float d = d0 * sc[j];
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    L[16 * j + ii] = (sbyte)(Math.Max(-32, Math.Min(31, l)) + 32);
                }
            }
            byte* ql = b;
            byte* qh = b + 128;
            for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
            {
                for (int l = 0; l < 32; l++)
                {
                    int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                    ql[l] = (byte)(q1 | (q3 << 4));
                    ql[l + 32] = (byte)(q2 | (q4 << 4));
                    qh[l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
                }
            }
        }
    }
}
