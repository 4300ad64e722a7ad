using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>F32 rows: dot products. The scalar reference is ggml's <c>ggml_vec_dot_f32</c> generic loop (float products summed in double);
/// the SIMD path sums in float with FMA over several accumulators, so it agrees to float rounding, not bit for bit.</summary>
internal static unsafe class F32
{
    /// <summary>Scalar reference.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        float* x = (float*)w, y = (float*)a;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += x[i] * y[i];
        return (float)sum;
    }

    /// <summary>Best available F32 dot product.</summary>
    public static float Dot(byte* w, byte* a, int n)
    {
        float* x = (float*)w, y = (float*)a;
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && n >= 64)
        {
            Vector512<float> s0 = Vector512<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i + 64 <= n; i += 64)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(y + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i + 16), Vector512.Load(y + i + 16), s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i + 32), Vector512.Load(y + i + 32), s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i + 48), Vector512.Load(y + i + 48), s3);
            }
            for (; i + 16 <= n; i += 16) s0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(y + i), s0);
            sum = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i + 32 <= n; i += 32)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 8), Vector256.Load(y + i + 8), s1);
                s2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 16), Vector256.Load(y + i + 16), s2);
                s3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 24), Vector256.Load(y + i + 24), s3);
            }
            for (; i + 8 <= n; i += 8) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), s0);
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++) sum += x[i] * y[i];
        return sum;
    }

    /// <summary>Copies <paramref name="n"/> floats (the "dequantization" of F32).</summary>
    public static void Dequantize(byte* src, float* dst, long n) => Buffer.MemoryCopy(src, dst, n * 4, n * 4);
}

/// <summary>F16 rows: conversion and dot products (scalar reference: <c>ggml_vec_dot_f16</c> generic, float products summed in double).</summary>
internal static unsafe class F16
{
    /// <summary>Widens n halves to floats.</summary>
    public static void Dequantize(byte* src, float* dst, long n)
    {
        for (long off = 0; off < n; off += int.MaxValue / 2)
        {
            int len = (int)Math.Min(n - off, int.MaxValue / 2);
            TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)src + off, len), new Span<float>(dst + off, len));
        }
    }

    /// <summary>Rounds n floats to halves (nearest, ties to even): the activation conversion for F16 weights.</summary>
    public static void Quantize(float* x, byte* dst, int n)
        => TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(x, n), new Span<Half>((Half*)dst, n));

    /// <summary>Scalar reference.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Fp16.ToSingle(x[i]) * Fp16.ToSingle(y[i]);
        return (float)sum;
    }

    /// <summary>Best available F16 dot product.</summary>
    public static float Dot(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        int i = 0;
        float sum = 0;
        if (Avx2.IsSupported && n >= 16)
        {
            // vpmovzxwd straight from memory: cheaper than Widen, which has to cross 128-bit lanes.
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0;
            for (; i + 16 <= n; i += 16)
            {
                s0 = Vector256.FusedMultiplyAdd(ToSingle(Avx2.ConvertToVector256Int32(x + i).AsUInt32()), ToSingle(Avx2.ConvertToVector256Int32(y + i).AsUInt32()), s0);
                s1 = Vector256.FusedMultiplyAdd(ToSingle(Avx2.ConvertToVector256Int32(x + i + 8).AsUInt32()), ToSingle(Avx2.ConvertToVector256Int32(y + i + 8).AsUInt32()), s1);
            }
            sum = Vector256.Sum(s0 + s1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 16)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0;
            for (; i + 16 <= n; i += 16)
            {
                if (Sse.IsSupported) Sse.Prefetch0(x + i + DecodePrefetch.StreamBytes / 2); // decode streams the weights (see DecodePrefetch)
                var (xl, xh) = Vector256.Widen(Vector256.Load(x + i));
                var (yl, yh) = Vector256.Widen(Vector256.Load(y + i));
                s0 = Vector256.FusedMultiplyAdd(ToSingle(xl), ToSingle(yl), s0);
                s1 = Vector256.FusedMultiplyAdd(ToSingle(xh), ToSingle(yh), s1);
            }
            sum = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++) sum += Fp16.ToSingle(x[i]) * Fp16.ToSingle(y[i]);
        return sum;
    }

    /// <summary>Exact half-to-float on 8 lanes (half bits in the low 16 bits of each lane), in integer steps and one
    /// float subtraction on normal numbers only, so no denormal float is ever an operand (an Intel core takes a
    /// ~150-cycle microcode assist for each such operation); see <see cref="F16Wide"/>'s Widen16 for the steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> ToSingle(Vector256<uint> h)
    {
        Vector256<uint> o = Vector256.ShiftLeft(h & Vector256.Create(0x7fffu), 13);
        Vector256<uint> exp = o & Vector256.Create(0x0F800000u);
        Vector256<uint> normal = o + Vector256.Create(0x38000000u);
        Vector256<uint> infNan = normal + Vector256.Create(0x38000000u);
        Vector256<uint> small = ((o + Vector256.Create(0x38800000u)).AsSingle() - Vector256.Create(6.103515625e-05f)).AsUInt32();
        Vector256<uint> r = Vector256.ConditionalSelect(Vector256.Equals(exp, Vector256<uint>.Zero), small,
            Vector256.ConditionalSelect(Vector256.Equals(exp, Vector256.Create(0x0F800000u)), infNan, normal));
        return (r | Vector256.ShiftLeft(h & Vector256.Create(0x8000u), 16)).AsSingle();
    }
}

/// <summary>BF16 rows: conversion and dot products (scalar reference: <c>ggml_vec_dot_bf16</c> generic, float products summed in double).</summary>
internal static unsafe class BF16
{
    /// <summary>Widens n bfloat16 values to floats.</summary>
    public static void Dequantize(byte* src, float* dst, long n) => BFloat16.ToSingle((ushort*)src, dst, n);

    /// <summary>Rounds n floats to bfloat16 (nearest, ties to even): the activation conversion for BF16 weights.</summary>
    public static void Quantize(float* x, byte* dst, int n) => BFloat16.FromSingle(x, (ushort*)dst, n);

    /// <summary>Scalar reference.</summary>
    public static float DotScalar(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += BFloat16.ToSingle(x[i]) * BFloat16.ToSingle(y[i]);
        return (float)sum;
    }

    /// <summary>Best available BF16 dot product.</summary>
    public static float Dot(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        int i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 16)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0;
            for (; i + 16 <= n; i += 16)
            {
                if (Sse.IsSupported) Sse.Prefetch0(x + i + DecodePrefetch.StreamBytes / 2); // decode streams the weights (see DecodePrefetch)
                var (xl, xh) = Vector256.Widen(Vector256.Load(x + i));
                var (yl, yh) = Vector256.Widen(Vector256.Load(y + i));
                s0 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(xl, 16).AsSingle(), Vector256.ShiftLeft(yl, 16).AsSingle(), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(xh, 16).AsSingle(), Vector256.ShiftLeft(yh, 16).AsSingle(), s1);
            }
            sum = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++) sum += BFloat16.ToSingle(x[i]) * BFloat16.ToSingle(y[i]);
        return sum;
    }
}
