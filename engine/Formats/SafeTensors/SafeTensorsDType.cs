using Tessera.Quantization;

namespace Tessera.Formats.SafeTensors;

/// <summary>Element types of the safetensors format (the names written in a header's <c>dtype</c>).</summary>
public enum SafeTensorsDType
{
    /// <summary>boolean, one byte</summary>
    BOOL,
    /// <summary>unsigned 8-bit</summary>
    U8,
    /// <summary>signed 8-bit</summary>
    I8,
    /// <summary>8-bit float, 5 exponent bits</summary>
    F8_E5M2,
    /// <summary>8-bit float, 4 exponent bits</summary>
    F8_E4M3,
    /// <summary>8-bit power-of-two scale</summary>
    F8_E8M0,
    /// <summary>signed 16-bit</summary>
    I16,
    /// <summary>unsigned 16-bit</summary>
    U16,
    /// <summary>IEEE half</summary>
    F16,
    /// <summary>bfloat16</summary>
    BF16,
    /// <summary>signed 32-bit</summary>
    I32,
    /// <summary>unsigned 32-bit</summary>
    U32,
    /// <summary>IEEE single</summary>
    F32,
    /// <summary>IEEE double</summary>
    F64,
    /// <summary>signed 64-bit</summary>
    I64,
    /// <summary>unsigned 64-bit</summary>
    U64,
}

/// <summary>Sizes and compute support of <see cref="SafeTensorsDType"/>.</summary>
public static class SafeTensorsDTypeInfo
{
    /// <summary>Bytes per element.</summary>
    public static int ElementBytes(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.BOOL or SafeTensorsDType.U8 or SafeTensorsDType.I8 or
        SafeTensorsDType.F8_E5M2 or SafeTensorsDType.F8_E4M3 or SafeTensorsDType.F8_E8M0 => 1,
        SafeTensorsDType.I16 or SafeTensorsDType.U16 or SafeTensorsDType.F16 or SafeTensorsDType.BF16 => 2,
        SafeTensorsDType.I32 or SafeTensorsDType.U32 or SafeTensorsDType.F32 => 4,
        SafeTensorsDType.F64 or SafeTensorsDType.I64 or SafeTensorsDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>The dtype named <paramref name="name"/> in a header (exact, case-sensitive, as the format
    /// specifies), or false for a name Tessera does not know (including sub-byte types such as F4).</summary>
    public static bool TryParse(string name, out SafeTensorsDType dtype)
    {
        // Enum.TryParse would also accept numbers and other casings; the header's names are exact.
        foreach (SafeTensorsDType d in Enum.GetValues<SafeTensorsDType>())
        {
            if (d.ToString() == name) { dtype = d; return true; }
        }
        dtype = default;
        return false;
    }

    /// <summary>True for the dtypes Tessera computes with: F32, F16 and BF16.</summary>
    public static bool IsComputeType(SafeTensorsDType dtype) =>
        dtype is SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16;

    /// <summary>The <see cref="GgmlType"/> with the same element layout, for the compute types; null otherwise.</summary>
    public static GgmlType? ToGgmlType(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 => GgmlType.F32,
        SafeTensorsDType.F16 => GgmlType.F16,
        SafeTensorsDType.BF16 => GgmlType.BF16,
        _ => null,
    };
}
