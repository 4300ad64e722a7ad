using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>Q8_0: blocks of 32 = { f16 d; int8 qs[32] } (34 bytes); x = d * q. Also the vec-dot type of Q4_0, Q5_0, Q8_0, IQ4_NL.</summary>
internal static unsafe class Q8_0
{
    public const int BlockSize = 32, BlockBytes = 34;

    /// <summary><c>dequantize_row_q8_0</c>.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        for (long i = 0; i < n / BlockSize; i++)
        {
            byte* b = src + i * BlockBytes;
            float d = Fp16.Load(b);
            sbyte* qs = (sbyte*)(b + 2);
            for (int j = 0; j < BlockSize; j++) dst[i * BlockSize + j] = qs[j] * d;
        }
    }

    /// <summary>llama.cpp's x86 <c>quantize_row_q8_0</c> (AVX2 path), which is what the reference outputs were computed with:
    /// d = amax/127 stored as f16, q = round-to-nearest-even(x * (127/amax)). The portable <c>_ref</c> version (x / d, ties
    /// away from zero) differs on rare ties, and in these small models one flipped activation visibly moves the logits.</summary>
    public static void Quantize(float* x, byte* dst, int n)
    {
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* b = dst + i * BlockBytes;
            Fp16.Store(b, QuantizeBlock(x + i * BlockSize, (sbyte*)(b + 2)));
        }
    }

    /// <summary>One block of 32: writes the quants and returns the unrounded scale d (Q8_1 shares this).</summary>
    internal static float QuantizeBlock(float* xb, sbyte* qs)
    {
        if (Vector256.IsHardwareAccelerated) return QuantizeBlockVector(xb, qs);
        float amax = 0;
        for (int j = 0; j < BlockSize; j++) amax = MathF.Max(amax, MathF.Abs(xb[j]));
        float id = amax != 0 ? 127.0f / amax : 0.0f;
        for (int j = 0; j < BlockSize; j++) qs[j] = (sbyte)MathF.Round(xb[j] * id, MidpointRounding.ToEven);
        return amax / 127;
    }

    /// <summary><see cref="QuantizeBlock"/> on four vectors of 8: the same products and the same round-to-even, so the same
    /// bytes (the maximum of magnitudes does not depend on the order it is taken in).</summary>
    private static float QuantizeBlockVector(float* xb, sbyte* qs)
    {
        Vector256<float> x0 = Vector256.Load(xb), x1 = Vector256.Load(xb + 8), x2 = Vector256.Load(xb + 16), x3 = Vector256.Load(xb + 24);
        Vector256<float> m = Vector256.Max(Vector256.Max(Vector256.Abs(x0), Vector256.Abs(x1)), Vector256.Max(Vector256.Abs(x2), Vector256.Abs(x3)));
        Vector128<float> h = Vector128.Max(m.GetLower(), m.GetUpper());
        h = Vector128.Max(h, Vector128.Shuffle(h, Vector128.Create(2, 3, 0, 1)));
        float amax = MathF.Max(h.GetElement(0), h.GetElement(1));
        Vector256<float> id = Vector256.Create(amax != 0 ? 127.0f / amax : 0.0f);
        Vector256<short> lo = Vector256.Narrow(Q(x0, id), Q(x1, id)), hi = Vector256.Narrow(Q(x2, id), Q(x3, id));
        Vector256.Narrow(lo, hi).AsSByte().Store(qs);
        return amax / 127;

        static Vector256<int> Q(Vector256<float> x, Vector256<float> id)
            => Vector256.ConvertToInt32(Vector256.Round(x * id, MidpointRounding.ToEven));
    }

    /// <summary><c>ggml_vec_dot_q8_0_q8_0_generic</c>.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        float sumf = 0;
        for (int i = 0; i < n / BlockSize; i++)
        {
            sbyte* x = (sbyte*)(w + i * BlockBytes + 2);
            sbyte* y = (sbyte*)(a + i * BlockBytes + 2);
            int sumi = 0;
            for (int j = 0; j < BlockSize; j++) sumi += x[j] * y[j];
            sumf += sumi * (Fp16.Load(w + i * BlockBytes) * Fp16.Load(a + i * BlockBytes));
        }
        return sumf;
    }

    /// <summary>Best available Q8_0 x Q8_0 dot product.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(byte* w, byte* a, int n) => SimdHelpers.Avx2Fma ? DotAvx2(w, a, n) : DotScalar(w, a, n);

    internal static float DotAvx2(byte* w, byte* a, int n)
    {
        int nb = n / BlockSize;
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
        int i = 0;
        for (; i + 1 < nb; i += 2)
        {
            byte* w0 = w + i * BlockBytes, a0 = a + i * BlockBytes;
            byte* w1 = w0 + BlockBytes, a1 = a0 + BlockBytes;
            Sse.Prefetch0(w0 + DecodePrefetch.StreamBytes); // decode streams the weights from memory (see DecodePrefetch)
            Vector256<int> s0 = SimdHelpers.DotI8I8(Vector256.Load((sbyte*)(w0 + 2)), Vector256.Load((sbyte*)(a0 + 2)));
            Vector256<int> s1 = SimdHelpers.DotI8I8(Vector256.Load((sbyte*)(w1 + 2)), Vector256.Load((sbyte*)(a1 + 2)));
            acc0 = Fma.MultiplyAdd(Vector256.Create(Fp16.Load(w0) * Fp16.Load(a0)), Avx.ConvertToVector256Single(s0), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(Fp16.Load(w1) * Fp16.Load(a1)), Avx.ConvertToVector256Single(s1), acc1);
        }
        for (; i < nb; i++)
        {
            byte* w0 = w + i * BlockBytes, a0 = a + i * BlockBytes;
            Vector256<int> s0 = SimdHelpers.DotI8I8(Vector256.Load((sbyte*)(w0 + 2)), Vector256.Load((sbyte*)(a0 + 2)));
            acc0 = Fma.MultiplyAdd(Vector256.Create(Fp16.Load(w0) * Fp16.Load(a0)), Avx.ConvertToVector256Single(s0), acc0);
        }
        return SimdHelpers.HSum(acc0 + acc1);
    }
}
