using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tessera.Quantization;

/// <summary>bfloat16 conversions, bit-compatible with ggml's <c>ggml_compute_fp32_to_bf16</c> / <c>ggml_compute_bf16_to_fp32</c>:
/// narrowing rounds to nearest, ties to even; NaN stays NaN (made quiet); subnormals are kept, not flushed.</summary>
public static class BFloat16
{
    /// <summary>Widens the bfloat16 whose bits are <paramref name="bits"/> to float (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Rounds <paramref name="value"/> to bfloat16 (nearest, ties to even) and returns its bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 64); // NaN: keep sign and payload top, force quiet
        return (ushort)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
    }

    /// <summary>Widens every bfloat16 in <paramref name="src"/> into <paramref name="dst"/> (same length).</summary>
    public static unsafe void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length != src.Length) throw new ArgumentException("source and destination lengths differ", nameof(dst));
        fixed (ushort* s = src)
        fixed (float* d = dst)
            ToSingle(s, d, src.Length);
    }

    /// <summary>Rounds every float in <paramref name="src"/> to bfloat16 bits in <paramref name="dst"/> (same length).</summary>
    public static unsafe void FromSingle(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length != src.Length) throw new ArgumentException("source and destination lengths differ", nameof(dst));
        fixed (float* s = src)
        fixed (ushort* d = dst)
            FromSingle(s, d, src.Length);
    }

    internal static unsafe void ToSingle(ushort* src, float* dst, long n)
    {
        long i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(src + i));
                Vector256.ShiftLeft(lo, 16).AsSingle().Store(dst + i);
                Vector256.ShiftLeft(hi, 16).AsSingle().Store(dst + i + 8);
            }
        }
        for (; i < n; i++) dst[i] = ToSingle(src[i]);
    }

    internal static unsafe void FromSingle(float* src, ushort* dst, long n)
    {
        long i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                Vector256<uint> lo = Narrow(Vector256.Load(src + i).AsUInt32());
                Vector256<uint> hi = Narrow(Vector256.Load(src + i + 8).AsUInt32());
                Vector256.Narrow(lo, hi).Store(dst + i);
            }
        }
        for (; i < n; i++) dst[i] = FromSingle(src[i]);
    }

    // The scalar rule on 8 lanes; the result keeps the 16 bits in the low half of each lane.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Narrow(Vector256<uint> u)
    {
        Vector256<uint> rounded = Vector256.ShiftRightLogical(
            u + Vector256.Create(0x7fffu) + (Vector256.ShiftRightLogical(u, 16) & Vector256<uint>.One), 16);
        Vector256<uint> nan = Vector256.ShiftRightLogical(u, 16) | Vector256.Create(64u);
        Vector256<uint> isNan = Vector256.GreaterThan((u & Vector256.Create(0x7fffffffu)).AsInt32(), Vector256.Create(0x7f800000)).AsUInt32();
        return Vector256.ConditionalSelect(isNan, nan, rounded);
    }
}
