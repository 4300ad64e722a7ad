using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>
/// The fast F16-weight product. llama.cpp rounds the activations to F16 and multiplies F16 by F16; here the activations
/// are rounded to F16 once per row but kept as float (<see cref="RoundRow"/>: the same values), so a dot product
/// widens only the weight row. .NET has no F16C intrinsic, so widening is a few integer ops per lane and costs more
/// than the multiply-add itself: decode widens on the fly (<see cref="Dot"/>), prefill widens each weight row once and
/// reuses it for every activation row (<see cref="DotWidened4"/>).
/// <para>Both paths add the products in one fixed order (the "canonical order"): chunks of
/// <see cref="Lanes"/> elements, chunk j into accumulator j % 2, the two accumulators added and reduced by
/// <see cref="Vector512.Sum{T}(Vector512{T})"/>, then the leftover elements one by one. Widening is exact, so a row
/// gives bit-identical results alone or in a batch of any size (the serving scheduler relies on that).</para>
/// </summary>
internal static unsafe class F16Wide
{
    /// <summary>Elements per vector chunk of the canonical order (16 with AVX-512, 8 with AVX2, 0 = scalar only).</summary>
    public static readonly int Lanes = Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? 16
        : Avx2.IsSupported ? 8 : 0;

    /// <summary>dst = x rounded to F16 (nearest, ties to even) and widened back: llama.cpp's F16 activation values as floats.</summary>
    public static void RoundRow(float* x, float* dst, int n)
    {
        const int Chunk = 256;
        Half* h = stackalloc Half[Chunk];
        for (int i = 0; i < n; i += Chunk)
        {
            int len = Math.Min(Chunk, n - i);
            System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(x + i, len), new Span<Half>(h, len));
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(h, len), new Span<float>(dst + i, len));
        }
    }

    /// <summary>F16 weight row · float activation row (from <see cref="RoundRow"/>), widening the weights on the fly.</summary>
    public static float Dot(byte* wBytes, byte* aBytes, int n)
    {
        ushort* w = (ushort*)wBytes;
        float* a = (float*)aBytes;
        int i = 0;
        float sum = 0;
        if (Lanes == 16)
        {
            Vector512<float> s0 = Vector512<float>.Zero, s1 = s0;
            for (; i + 32 <= n; i += 32)
            {
                Sse.Prefetch0(w + i + DecodePrefetch.StreamBytes / 2); // decode streams the weights (see DecodePrefetch)
                s0 = Vector512.FusedMultiplyAdd(Widen16(w + i), Vector512.Load(a + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Widen16(w + i + 16), Vector512.Load(a + i + 16), s1);
            }
            if (i + 16 <= n) { s0 = Vector512.FusedMultiplyAdd(Widen16(w + i), Vector512.Load(a + i), s0); i += 16; }
            sum = Vector512.Sum(s0 + s1);
        }
        else if (Lanes == 8)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0;
            for (; i + 16 <= n; i += 16)
            {
                Sse.Prefetch0(w + i + DecodePrefetch.StreamBytes / 2);
                s0 = Vector256.FusedMultiplyAdd(Widen8(w + i), Vector256.Load(a + i), s0);
                s1 = Vector256.FusedMultiplyAdd(Widen8(w + i + 8), Vector256.Load(a + i + 8), s1);
            }
            if (i + 8 <= n) { s0 = Vector256.FusedMultiplyAdd(Widen8(w + i), Vector256.Load(a + i), s0); i += 8; }
            sum = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++) sum += Fp16.ToSingle(w[i]) * a[i];
        return sum;
    }

    /// <summary>Four already-widened weight rows (<paramref name="w"/>, <paramref name="stride"/> floats apart) · one
    /// activation row, in the canonical order: <c>y[k]</c> equals <see cref="Dot"/> of row k bit for bit. The activation
    /// chunk is loaded once for the four rows, so the loop issues five loads per four multiply-adds.</summary>
    public static void DotWidened4(float* w, int stride, float* a, int n, float* y)
    {
        float* w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        int i = 0;
        float r0 = 0, r1 = 0, r2 = 0, r3 = 0;
        if (Lanes == 16)
        {
            Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
            for (; i + 32 <= n; i += 32)
            {
                Vector512<float> x0 = Vector512.Load(a + i), x1 = Vector512.Load(a + i + 16);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w0 + i), x0, a0);
                b0 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + i), x0, b0);
                c0 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + i), x0, c0);
                d0 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + i), x0, d0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w0 + i + 16), x1, a1);
                b1 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + i + 16), x1, b1);
                c1 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + i + 16), x1, c1);
                d1 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + i + 16), x1, d1);
            }
            if (i + 16 <= n)
            {
                Vector512<float> x0 = Vector512.Load(a + i);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w0 + i), x0, a0);
                b0 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + i), x0, b0);
                c0 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + i), x0, c0);
                d0 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + i), x0, d0);
                i += 16;
            }
            r0 = Vector512.Sum(a0 + a1); r1 = Vector512.Sum(b0 + b1); r2 = Vector512.Sum(c0 + c1); r3 = Vector512.Sum(d0 + d1);
        }
        else if (Lanes == 8)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
            for (; i + 16 <= n; i += 16)
            {
                Vector256<float> x0 = Vector256.Load(a + i), x1 = Vector256.Load(a + i + 8);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w0 + i), x0, a0);
                b0 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + i), x0, b0);
                c0 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + i), x0, c0);
                d0 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + i), x0, d0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w0 + i + 8), x1, a1);
                b1 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + i + 8), x1, b1);
                c1 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + i + 8), x1, c1);
                d1 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + i + 8), x1, d1);
            }
            if (i + 8 <= n)
            {
                Vector256<float> x0 = Vector256.Load(a + i);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w0 + i), x0, a0);
                b0 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + i), x0, b0);
                c0 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + i), x0, c0);
                d0 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + i), x0, d0);
                i += 8;
            }
            r0 = Vector256.Sum(a0 + a1); r1 = Vector256.Sum(b0 + b1); r2 = Vector256.Sum(c0 + c1); r3 = Vector256.Sum(d0 + d1);
        }
        for (; i < n; i++)
        {
            float x = a[i];
            r0 += w0[i] * x; r1 += w1[i] * x; r2 += w2[i] * x; r3 += w3[i] * x;
        }
        y[0] = r0; y[1] = r1; y[2] = r2; y[3] = r3;
    }

    /// <summary>One already-widened weight row · one activation row in the canonical order (the leftover rows of a
    /// tile); equals <see cref="Dot"/> bit for bit.</summary>
    public static float DotWidened(float* w, float* a, int n)
    {
        int i = 0;
        float sum = 0;
        if (Lanes == 16)
        {
            Vector512<float> s0 = Vector512<float>.Zero, s1 = s0;
            for (; i + 32 <= n; i += 32)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + i), Vector512.Load(a + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(w + i + 16), Vector512.Load(a + i + 16), s1);
            }
            if (i + 16 <= n) { s0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + i), Vector512.Load(a + i), s0); i += 16; }
            sum = Vector512.Sum(s0 + s1);
        }
        else if (Lanes == 8)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0;
            for (; i + 16 <= n; i += 16)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i), Vector256.Load(a + i), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i + 8), Vector256.Load(a + i + 8), s1);
            }
            if (i + 8 <= n) { s0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i), Vector256.Load(a + i), s0); i += 8; }
            sum = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++) sum += w[i] * a[i];
        return sum;
    }

    /// <summary>Widens a weight row for <see cref="DotWidened4"/> (exact).</summary>
    public static void WidenRow(byte* w, float* dst, int n) => F16.Dequantize(w, dst, n);

    /// <summary>16 halves to floats, exactly, in integer steps plus one float subtraction of normal numbers
    /// (F. Giesen's conversion). Sign-extending the 16 bits and shifting by 13 puts the half's exponent and mantissa
    /// under the float's; adding (127 - 15) &lt;&lt; 23 rebiases normals; infinities and NaNs (exponent 31) get the rest
    /// of the exponent; for zeros and subnormals, 2^-14 · (1 + m/1024) - 2^-14 = m · 2^-24 exactly (Sterbenz); the
    /// sign-extended top bit is the sign.
    /// <para>Why not the shorter multiply by 2^112: a subnormal half becomes a denormal float there, and an Intel core
    /// takes a microcode assist of ~150 cycles on every multiply with a denormal operand. Weights of std 0.02 hold
    /// 0.24% subnormal halves, so 4% of 16-value chunks have one, and F16 decode ran 1.8-2.2x slower than on the same
    /// weights without them. With this conversion both run at the same speed (a version that branched to it only for
    /// such chunks was no faster on realistic weights).</para></summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Widen16(ushort* p)
    {
        Vector512<int> x = Avx512BW.ConvertToVector512Int32(Vector256.Load((short*)p)); // sign-extended
        Vector512<int> o = Vector512.ShiftLeft(x, 13) & Vector512.Create(0x0FFFE000);
        Vector512<int> exp = o & Vector512.Create(0x0F800000);
        Vector512<int> normal = o + Vector512.Create(0x38000000);
        Vector512<int> infNan = normal + Vector512.Create(0x38000000);
        Vector512<int> small = ((o + Vector512.Create(0x38800000)).AsSingle() - Vector512.Create(6.103515625e-05f)).AsInt32();
        Vector512<int> r = Vector512.ConditionalSelect(Vector512.Equals(exp, Vector512<int>.Zero), small,
            Vector512.ConditionalSelect(Vector512.Equals(exp, Vector512.Create(0x0F800000)), infNan, normal));
        return (r | (x & Vector512.Create(int.MinValue))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen8(ushort* p) => F16.ToSingle(Avx2.ConvertToVector256Int32(p).AsUInt32());
}
