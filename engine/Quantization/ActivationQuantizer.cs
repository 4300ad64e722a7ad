namespace Tessera.Quantization;

/// <summary>Converts float activation rows to a vec-dot type, as llama.cpp's <c>from_float</c> for that type
/// (the reference <c>quantize_row_*_ref</c> semantics; see each type for rounding).</summary>
public static unsafe class ActivationQuantizer
{
    /// <summary>Converts <paramref name="x"/> into <paramref name="dst"/>, which must hold exactly
    /// <c>GgmlTypeInfo.RowBytes(vecDotType, x.Length)</c> bytes.</summary>
    /// <param name="vecDotType">F32 (copy), F16 or BF16 (round to nearest even), Q8_0, Q8_1 or Q8_K.</param>
    /// <param name="x">The activations; the length must be a multiple of the type's block size.</param>
    /// <param name="dst">Receives the converted row.</param>
    /// <exception cref="NotSupportedException"><paramref name="vecDotType"/> is not an activation type.</exception>
    public static void QuantizeRow(GgmlType vecDotType, ReadOnlySpan<float> x, Span<byte> dst)
    {
        long bytes = RowBytesChecked(vecDotType, x.Length);
        if (dst.Length != bytes)
            throw new ArgumentException($"{vecDotType} row of {x.Length} elements takes {bytes} bytes, destination has {dst.Length}", nameof(dst));
        fixed (float* px = x)
        fixed (byte* pd = dst)
            QuantizeRowUnchecked(vecDotType, px, pd, x.Length);
    }

    internal static long RowBytesChecked(GgmlType vecDotType, int n)
    {
        if (vecDotType is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.Q8_1 or GgmlType.Q8_K))
            throw new NotSupportedException($"ggml type {vecDotType} is not an activation (vec-dot) type");
        return GgmlTypeInfo.RowBytes(vecDotType, n);
    }

    /// <summary>Pointer form; no checks.</summary>
    internal static void QuantizeRowUnchecked(GgmlType vecDotType, float* x, byte* dst, int n)
    {
        switch (vecDotType)
        {
            case GgmlType.F32: Buffer.MemoryCopy(x, dst, (long)n * 4, (long)n * 4); break;
            case GgmlType.F16: F16.Quantize(x, dst, n); break;
            case GgmlType.BF16: BF16.Quantize(x, dst, n); break;
            case GgmlType.Q8_0: Q8_0.Quantize(x, dst, n); break;
            case GgmlType.Q8_1: Q8_1.Quantize(x, dst, n); break;
            case GgmlType.Q8_K: Q8_K.Quantize(x, dst, n); break;
            default: throw new NotSupportedException($"ggml type {vecDotType} is not an activation (vec-dot) type");
        }
    }
}
