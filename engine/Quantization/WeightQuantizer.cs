namespace Tessera.Quantization;

/// <summary>
/// Encodes float weights into GGUF tensor types with the same bytes as llama.cpp's reference quantizers
/// (<c>quantize_row_*_ref</c>, what <c>llama-quantize</c> writes without an importance matrix), so the result can
/// be read back by <see cref="Dequantizer"/> or by llama.cpp.
/// </summary>
internal static unsafe class WeightQuantizer
{
    /// <summary>True when <see cref="QuantizeRow"/> can write <paramref name="type"/>.</summary>
    public static bool Supports(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or
        GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q4_K or GgmlType.Q6_K;

    /// <summary>Encodes <paramref name="src"/> (one or more whole rows, a multiple of the type's block size) into
    /// <paramref name="dst"/>, which must be exactly <c>GgmlTypeInfo.RowBytes(type, src.Length)</c> long.</summary>
    public static void QuantizeRow(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (!Supports(type)) throw new NotSupportedException($"quantizing to ggml type {type} is not supported");
        long bytes = GgmlTypeInfo.RowBytes(type, src.Length);
        if (dst.Length != bytes)
            throw new ArgumentException($"{type} encoding of {src.Length} elements takes {bytes} bytes, destination has {dst.Length}", nameof(dst));
        fixed (float* ps = src)
        fixed (byte* pd = dst)
            Quantize(type, ps, pd, src.Length);
    }

    /// <summary>Pointer form: <paramref name="n"/> elements, a multiple of the block size; the type must be supported.</summary>
    internal static void Quantize(GgmlType type, float* src, byte* dst, long n)
    {
        switch (type)
        {
            case GgmlType.F32: new ReadOnlySpan<byte>(src, checked((int)(n * 4))).CopyTo(new Span<byte>(dst, (int)(n * 4))); break;
            case GgmlType.F16: Fp16.FromSingle(new ReadOnlySpan<float>(src, checked((int)n)), new Span<ushort>(dst, (int)n)); break;
            case GgmlType.BF16: BFloat16.FromSingle(src, (ushort*)dst, n); break;
            case GgmlType.Q8_0: RefQuantize.Q8_0(src, dst, n); break;
            case GgmlType.Q4_0: RefQuantize.Q4_0(src, dst, n); break;
            case GgmlType.Q5_0: RefQuantize.Q5_0(src, dst, n); break;
            case GgmlType.Q4_K: RefQuantizeK.Q4_K(src, dst, n); break;
            case GgmlType.Q6_K: RefQuantizeK.Q6_K(src, dst, n); break;
            default: throw new NotSupportedException($"quantizing to ggml type {type} is not supported");
        }
    }
}
