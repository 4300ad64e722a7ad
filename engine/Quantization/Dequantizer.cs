namespace Tessera.Quantization;

/// <summary>Expands rows of a GGUF tensor type to float, exactly as llama.cpp's <c>dequantize_row_*</c>.</summary>
public static unsafe class Dequantizer
{
    /// <summary>Dequantizes <paramref name="dst"/>.Length elements from <paramref name="src"/>, which must hold exactly
    /// <c>GgmlTypeInfo.RowBytes(type, dst.Length)</c> bytes.</summary>
    /// <param name="type">F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K or IQ4_NL (Q8_K too, for tests).</param>
    /// <param name="src">The encoded blocks.</param>
    /// <param name="dst">Receives the values; its length must be a multiple of the type's block size.</param>
    /// <exception cref="NotSupportedException"><paramref name="type"/> is not supported.</exception>
    public static void DequantizeRow(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        var kernel = Kernel(type);
        long bytes = GgmlTypeInfo.RowBytes(type, dst.Length);
        if (src.Length != bytes)
            throw new ArgumentException($"{type} row of {dst.Length} elements takes {bytes} bytes, source has {src.Length}", nameof(src));
        fixed (byte* ps = src)
        fixed (float* pd = dst)
            kernel(ps, pd, dst.Length);
    }

    /// <summary>Pointer form for rows or whole tensors beyond 2 GiB: <paramref name="n"/> elements, a multiple of the block size.</summary>
    internal static void Dequantize(GgmlType type, byte* src, float* dst, long n) => Kernel(type)(src, dst, n);

    internal static delegate*<byte*, float*, long, void> Kernel(GgmlType type) => type switch
    {
        GgmlType.F32 => &F32.Dequantize,
        GgmlType.F16 => &F16.Dequantize,
        GgmlType.BF16 => &BF16.Dequantize,
        GgmlType.Q4_0 => &Q4_0.Dequantize,
        GgmlType.Q4_1 => &Q4_1.Dequantize,
        GgmlType.Q5_0 => &Q5_0.Dequantize,
        GgmlType.Q5_1 => &Q5_1.Dequantize,
        GgmlType.Q8_0 => &Q8_0.Dequantize,
        GgmlType.Q8_K => &Q8_K.Dequantize,
        GgmlType.Q2_K => &Q2_K.Dequantize,
        GgmlType.Q3_K => &Q3_K.Dequantize,
        GgmlType.Q4_K => &Q4_K.Dequantize,
        GgmlType.Q5_K => &Q5_K.Dequantize,
        GgmlType.Q6_K => &Q6_K.Dequantize,
        GgmlType.IQ4_NL => &IQ4_NL.Dequantize,
        _ => throw new NotSupportedException($"dequantization of ggml type {type} is not supported"),
    };
}
