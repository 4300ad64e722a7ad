namespace Tessera.Quantization;

/// <summary>The type llama.cpp converts an activation row to before multiplying it with a weight row (<c>type_traits_cpu[t].vec_dot_type</c>).</summary>
public static class VecDotType
{
    /// <summary>The activation type paired with weights of type <paramref name="weight"/>.</summary>
    /// <exception cref="NotSupportedException">Tessera cannot compute with <paramref name="weight"/>.</exception>
    public static GgmlType For(GgmlType weight) => weight switch
    {
        GgmlType.F32 => GgmlType.F32,
        GgmlType.F16 => GgmlType.F16,
        GgmlType.BF16 => GgmlType.BF16,
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 or GgmlType.IQ4_NL => GgmlType.Q8_0,
        GgmlType.Q4_1 or GgmlType.Q5_1 => GgmlType.Q8_1,
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => GgmlType.Q8_K,
        _ => throw new NotSupportedException($"ggml type {weight} is not supported for matrix products"),
    };
}
