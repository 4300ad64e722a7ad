namespace Tessera.Quantization;

/// <summary>Dot product of one weight row with one activation row already converted to <see cref="VecDotType.For"/> of the weight type,
/// with the math of llama.cpp's <c>ggml_vec_dot_&lt;type&gt;_&lt;vecdottype&gt;</c>: integer sums per block, scaled by the block scales in float.
/// The SIMD kernels (AVX2/FMA, VNNI when present) add the same integers and differ from the scalar reference only in float rounding order.
/// F32/F16/BF16: the scalar reference sums float products in double (ggml's generic <c>ggml_float</c>); the SIMD path sums in float.</summary>
public static unsafe class VecDot
{
    /// <summary>Computes the dot product of <paramref name="n"/> elements.</summary>
    /// <param name="weightType">The weight row's type.</param>
    /// <param name="weightRow">Exactly <c>RowBytes(weightType, n)</c> bytes.</param>
    /// <param name="activationRow">Exactly <c>RowBytes(VecDotType.For(weightType), n)</c> bytes, from <see cref="ActivationQuantizer.QuantizeRow"/>.</param>
    /// <param name="n">Elements per row, a multiple of the block size.</param>
    /// <exception cref="NotSupportedException"><paramref name="weightType"/> is not supported.</exception>
    public static float Compute(GgmlType weightType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n)
        => Compute(weightType, weightRow, activationRow, n, Kernel(weightType));

    /// <summary>The scalar reference (a line-by-line port of ggml's generic C), for tests.</summary>
    internal static float ComputeScalar(GgmlType weightType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n)
        => Compute(weightType, weightRow, activationRow, n, ScalarKernel(weightType));

    private static float Compute(GgmlType weightType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n,
        delegate*<byte*, byte*, int, float> kernel)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (weightRow.Length != GgmlTypeInfo.RowBytes(weightType, n))
            throw new ArgumentException($"{weightType} row of {n} elements takes {GgmlTypeInfo.RowBytes(weightType, n)} bytes, got {weightRow.Length}", nameof(weightRow));
        GgmlType at = VecDotType.For(weightType);
        if (activationRow.Length != GgmlTypeInfo.RowBytes(at, n))
            throw new ArgumentException($"{at} row of {n} elements takes {GgmlTypeInfo.RowBytes(at, n)} bytes, got {activationRow.Length}", nameof(activationRow));
        fixed (byte* w = weightRow)
        fixed (byte* a = activationRow)
            return kernel(w, a, n);
    }

    /// <summary>The fastest kernel this machine runs for <paramref name="weightType"/> (chosen once per call site, not per element).</summary>
    internal static delegate*<byte*, byte*, int, float> Kernel(GgmlType weightType) => weightType switch
    {
        GgmlType.F32 => &F32.Dot,
        GgmlType.F16 => &F16.Dot,
        GgmlType.BF16 => &BF16.Dot,
        GgmlType.Q4_0 => &Q4_0.Dot,
        GgmlType.Q4_1 => &Q4_1.Dot,
        GgmlType.Q5_0 => &Q5_0.Dot,
        GgmlType.Q5_1 => &Q5_1.Dot,
        GgmlType.Q8_0 => &Q8_0.Dot,
        GgmlType.Q2_K => &Q2_K.Dot,
        GgmlType.Q3_K => &Q3_K.Dot,
        GgmlType.Q4_K => &Q4_K.Dot,
        GgmlType.Q5_K => &Q5_K.Dot,
        GgmlType.Q6_K => &Q6_K.Dot,
        GgmlType.IQ4_NL => &IQ4_NL.Dot,
        _ => throw new NotSupportedException($"dot products with ggml type {weightType} are not supported"),
    };

    /// <summary>The scalar reference kernel for <paramref name="weightType"/>.</summary>
    internal static delegate*<byte*, byte*, int, float> ScalarKernel(GgmlType weightType) => weightType switch
    {
        GgmlType.F32 => &F32.DotScalar,
        GgmlType.F16 => &F16.DotScalar,
        GgmlType.BF16 => &BF16.DotScalar,
        GgmlType.Q4_0 => &Q4_0.DotScalar,
        GgmlType.Q4_1 => &Q4_1.DotScalar,
        GgmlType.Q5_0 => &Q5_0.DotScalar,
        GgmlType.Q5_1 => &Q5_1.DotScalar,
        GgmlType.Q8_0 => &Q8_0.DotScalar,
        GgmlType.Q2_K => &Q2_K.DotScalar,
        GgmlType.Q3_K => &Q3_K.DotScalar,
        GgmlType.Q4_K => &Q4_K.DotScalar,
        GgmlType.Q5_K => &Q5_K.DotScalar,
        GgmlType.Q6_K => &Q6_K.DotScalar,
        GgmlType.IQ4_NL => &IQ4_NL.DotScalar,
        _ => throw new NotSupportedException($"dot products with ggml type {weightType} are not supported"),
    };
}
