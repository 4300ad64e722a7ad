namespace Tessera.Quantization;

/// <summary>Tensor element types, numbered as in the GGUF specification (<c>ggml_type</c>).</summary>
public enum GgmlType
{
    /// <summary>32-bit IEEE float.</summary>
    F32 = 0,
    /// <summary>16-bit IEEE half.</summary>
    F16 = 1,
    /// <summary>32-weight blocks: f16 scale, 4-bit quants.</summary>
    Q4_0 = 2,
    /// <summary>32-weight blocks: f16 scale and min, 4-bit quants.</summary>
    Q4_1 = 3,
    /// <summary>32-weight blocks: f16 scale, 5-bit quants.</summary>
    Q5_0 = 6,
    /// <summary>32-weight blocks: f16 scale and min, 5-bit quants.</summary>
    Q5_1 = 7,
    /// <summary>32-weight blocks: f16 scale, 8-bit quants.</summary>
    Q8_0 = 8,
    /// <summary>32-weight blocks: f16 scale and sum, 8-bit quants (activations).</summary>
    Q8_1 = 9,
    /// <summary>256-weight super-blocks, 2-bit quants.</summary>
    Q2_K = 10,
    /// <summary>256-weight super-blocks, 3-bit quants.</summary>
    Q3_K = 11,
    /// <summary>256-weight super-blocks, 4-bit quants.</summary>
    Q4_K = 12,
    /// <summary>256-weight super-blocks, 5-bit quants.</summary>
    Q5_K = 13,
    /// <summary>256-weight super-blocks, 6-bit quants.</summary>
    Q6_K = 14,
    /// <summary>256-weight super-blocks, 8-bit quants with block sums (activations).</summary>
    Q8_K = 15,
    /// <summary>Importance-matrix 2-bit type (not computed by Tessera).</summary>
    IQ2_XXS = 16,
    /// <summary>Importance-matrix 2-bit type (not computed by Tessera).</summary>
    IQ2_XS = 17,
    /// <summary>Importance-matrix 3-bit type (not computed by Tessera).</summary>
    IQ3_XXS = 18,
    /// <summary>Importance-matrix 1-bit type (not computed by Tessera).</summary>
    IQ1_S = 19,
    /// <summary>32-weight blocks: f16 scale, 4-bit indices into a non-linear table.</summary>
    IQ4_NL = 20,
    /// <summary>Importance-matrix 3-bit type (not computed by Tessera).</summary>
    IQ3_S = 21,
    /// <summary>Importance-matrix 2-bit type (not computed by Tessera).</summary>
    IQ2_S = 22,
    /// <summary>Importance-matrix 4-bit type (not computed by Tessera).</summary>
    IQ4_XS = 23,
    /// <summary>8-bit integer.</summary>
    I8 = 24,
    /// <summary>16-bit integer.</summary>
    I16 = 25,
    /// <summary>32-bit integer.</summary>
    I32 = 26,
    /// <summary>64-bit integer.</summary>
    I64 = 27,
    /// <summary>64-bit float.</summary>
    F64 = 28,
    /// <summary>Importance-matrix 1-bit type (not computed by Tessera).</summary>
    IQ1_M = 29,
    /// <summary>bfloat16.</summary>
    BF16 = 30,
    /// <summary>Ternary type (not computed by Tessera).</summary>
    TQ1_0 = 34,
    /// <summary>Ternary type (not computed by Tessera).</summary>
    TQ2_0 = 35,
}

/// <summary>Block geometry of each <see cref="GgmlType"/>: how many elements a block holds and how many bytes it takes.</summary>
public static class GgmlTypeInfo
{
    /// <summary>Elements per block (1 for plain float and integer types).</summary>
    public static int BlockSize(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.F64 or
        GgmlType.I8 or GgmlType.I16 or GgmlType.I32 or GgmlType.I64 => 1,
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or
        GgmlType.Q8_0 or GgmlType.Q8_1 or GgmlType.IQ4_NL => 32,
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.Q8_K or
        GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ3_XXS or GgmlType.IQ1_S or GgmlType.IQ3_S or
        GgmlType.IQ2_S or GgmlType.IQ4_XS or GgmlType.IQ1_M or GgmlType.TQ1_0 or GgmlType.TQ2_0 => 256,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown ggml type"),
    };

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 or GgmlType.BF16 => 2,
        GgmlType.F64 or GgmlType.I64 => 8,
        GgmlType.I8 => 1,
        GgmlType.I16 => 2,
        GgmlType.I32 => 4,
        GgmlType.Q4_0 => 18,
        GgmlType.Q4_1 => 20,
        GgmlType.Q5_0 => 22,
        GgmlType.Q5_1 => 24,
        GgmlType.Q8_0 => 34,
        GgmlType.Q8_1 => 36,
        GgmlType.Q2_K => 84,
        GgmlType.Q3_K => 110,
        GgmlType.Q4_K => 144,
        GgmlType.Q5_K => 176,
        GgmlType.Q6_K => 210,
        GgmlType.Q8_K => 292,
        GgmlType.IQ2_XXS => 66,
        GgmlType.IQ2_XS => 74,
        GgmlType.IQ3_XXS => 98,
        GgmlType.IQ1_S => 50,
        GgmlType.IQ4_NL => 18,
        GgmlType.IQ3_S => 110,
        GgmlType.IQ2_S => 82,
        GgmlType.IQ4_XS => 136,
        GgmlType.IQ1_M => 56,
        GgmlType.TQ1_0 => 54,
        GgmlType.TQ2_0 => 66,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown ggml type"),
    };

    /// <summary>True when <paramref name="value"/> names a type in the GGUF specification.</summary>
    public static bool IsKnown(uint value) => value is <= 30 and not (4 or 5) or 34 or 35;

    /// <summary>Bytes taken by one row of <paramref name="elements"/> elements; the count must be a multiple of the block size.</summary>
    public static long RowBytes(GgmlType type, long elements)
    {
        int bs = BlockSize(type);
        if (elements % bs != 0)
            throw new ArgumentException($"{type} rows must be a multiple of {bs} elements, got {elements}", nameof(elements));
        return elements / bs * BlockBytes(type);
    }
}
