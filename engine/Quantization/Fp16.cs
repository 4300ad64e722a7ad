using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tessera.Quantization;

/// <summary>IEEE binary16 (half) conversions, bit-compatible with ggml's <c>GGML_FP16_TO_FP32</c> / <c>GGML_FP32_TO_FP16</c>
/// (exact widening; narrowing rounds to nearest, ties to even).</summary>
public static class Fp16
{
    // ggml keeps the same 64K-entry table (ggml_table_f32_f16); a load is cheaper than the software conversion.
    private static readonly float[] Table = BuildTable();

    private static float[] BuildTable()
    {
        var t = new float[65536];
        for (int i = 0; i < t.Length; i++) t[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return t;
    }

    /// <summary>Widens the half whose bits are <paramref name="bits"/> to float (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Table), bits);

    /// <summary>Rounds <paramref name="value"/> to the nearest half (ties to even; NaN stays NaN, overflow goes to infinity) and returns its bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>Widens every half in <paramref name="src"/> into <paramref name="dst"/> (same length).</summary>
    public static void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length != src.Length) throw new ArgumentException("source and destination lengths differ", nameof(dst));
        TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(src), dst);
    }

    /// <summary>Rounds every float in <paramref name="src"/> to half bits in <paramref name="dst"/> (same length).</summary>
    public static void FromSingle(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length != src.Length) throw new ArgumentException("source and destination lengths differ", nameof(dst));
        TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<ushort, Half>(dst));
    }

    /// <summary>Reads a little-endian half at <paramref name="p"/> (any alignment) as float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe float Load(byte* p) => ToSingle(Unsafe.ReadUnaligned<ushort>(p));

    /// <summary>Writes <paramref name="value"/> rounded to half at <paramref name="p"/> (any alignment).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void Store(byte* p, float value) => Unsafe.WriteUnaligned(p, FromSingle(value));
}
