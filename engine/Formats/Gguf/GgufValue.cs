namespace Tessera.Formats.Gguf;

/// <summary>Metadata value types of the GGUF specification.</summary>
public enum GgufValueType : uint
{
    /// <summary>unsigned 8-bit</summary>
    UInt8 = 0,
    /// <summary>signed 8-bit</summary>
    Int8 = 1,
    /// <summary>unsigned 16-bit</summary>
    UInt16 = 2,
    /// <summary>signed 16-bit</summary>
    Int16 = 3,
    /// <summary>unsigned 32-bit</summary>
    UInt32 = 4,
    /// <summary>signed 32-bit</summary>
    Int32 = 5,
    /// <summary>32-bit float</summary>
    Float32 = 6,
    /// <summary>boolean (one byte)</summary>
    Bool = 7,
    /// <summary>UTF-8 string with a 64-bit length</summary>
    String = 8,
    /// <summary>typed array with a 64-bit count</summary>
    Array = 9,
    /// <summary>unsigned 64-bit</summary>
    UInt64 = 10,
    /// <summary>signed 64-bit</summary>
    Int64 = 11,
    /// <summary>64-bit float</summary>
    Float64 = 12,
}

/// <summary>
/// One metadata value. Scalars are held as their .NET type (byte, sbyte, ushort, short, uint, int, float, bool,
/// string, ulong, long, double); arrays as a typed .NET array of those (string[] for strings, GgufValue[] for
/// arrays of arrays).
/// </summary>
public sealed partial class GgufValue
{
    internal GgufValue(GgufValueType type, object value, GgufValueType elementType = GgufValueType.UInt8)
    {
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    /// <summary>The value's type.</summary>
    public GgufValueType Type { get; }

    /// <summary>For arrays, the type of the elements.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The value itself (see the class remarks for the .NET types).</summary>
    public object Value { get; }

    /// <summary>Number of elements for an array, 1 for a scalar.</summary>
    public int Count => Value is Array a ? a.Length : 1;

    /// <summary>Short human-readable form for listings: scalars in full, arrays by type and count.</summary>
    public override string ToString() => Value switch
    {
        string s => s.Length > 80 ? s[..77] + "..." : s,
        Array a => $"[{ElementType} x {a.Length}]",
        float f => f.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToString(Value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
