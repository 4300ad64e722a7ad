namespace Tessera.Formats.Gguf;

// Factories for building metadata to write (GgufWriter). One overload per GGUF value type, so the .NET type of the
// argument picks the GGUF type at compile time: GgufValue.Of(5) is Int32, GgufValue.Of(5u) is UInt32.
// Arrays are copied, so a value cannot change after it has been handed to a writer.
public sealed partial class GgufValue
{
    /// <summary>A UInt8 value.</summary>
    public static GgufValue Of(byte value) => new(GgufValueType.UInt8, value);

    /// <summary>An Int8 value.</summary>
    public static GgufValue Of(sbyte value) => new(GgufValueType.Int8, value);

    /// <summary>A UInt16 value.</summary>
    public static GgufValue Of(ushort value) => new(GgufValueType.UInt16, value);

    /// <summary>An Int16 value.</summary>
    public static GgufValue Of(short value) => new(GgufValueType.Int16, value);

    /// <summary>A UInt32 value.</summary>
    public static GgufValue Of(uint value) => new(GgufValueType.UInt32, value);

    /// <summary>An Int32 value.</summary>
    public static GgufValue Of(int value) => new(GgufValueType.Int32, value);

    /// <summary>A Float32 value.</summary>
    public static GgufValue Of(float value) => new(GgufValueType.Float32, value);

    /// <summary>A Bool value.</summary>
    public static GgufValue Of(bool value) => new(GgufValueType.Bool, value);

    /// <summary>A String value (written as UTF-8).</summary>
    public static GgufValue Of(string value) => new(GgufValueType.String, value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>A UInt64 value.</summary>
    public static GgufValue Of(ulong value) => new(GgufValueType.UInt64, value);

    /// <summary>An Int64 value.</summary>
    public static GgufValue Of(long value) => new(GgufValueType.Int64, value);

    /// <summary>A Float64 value.</summary>
    public static GgufValue Of(double value) => new(GgufValueType.Float64, value);

    /// <summary>An array of UInt8.</summary>
    public static GgufValue Of(byte[] values) => OfArray(GgufValueType.UInt8, values);

    /// <summary>An array of Int8.</summary>
    public static GgufValue Of(sbyte[] values) => OfArray(GgufValueType.Int8, values);

    /// <summary>An array of UInt16.</summary>
    public static GgufValue Of(ushort[] values) => OfArray(GgufValueType.UInt16, values);

    /// <summary>An array of Int16.</summary>
    public static GgufValue Of(short[] values) => OfArray(GgufValueType.Int16, values);

    /// <summary>An array of UInt32.</summary>
    public static GgufValue Of(uint[] values) => OfArray(GgufValueType.UInt32, values);

    /// <summary>An array of Int32.</summary>
    public static GgufValue Of(int[] values) => OfArray(GgufValueType.Int32, values);

    /// <summary>An array of Float32.</summary>
    public static GgufValue Of(float[] values) => OfArray(GgufValueType.Float32, values);

    /// <summary>An array of Bool.</summary>
    public static GgufValue Of(bool[] values) => OfArray(GgufValueType.Bool, values);

    /// <summary>An array of String; no element may be null.</summary>
    public static GgufValue Of(string[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (Array.IndexOf(values, null) is int i and >= 0)
            throw new ArgumentException($"string array element {i} is null", nameof(values));
        return OfArray(GgufValueType.String, values);
    }

    /// <summary>An array of UInt64.</summary>
    public static GgufValue Of(ulong[] values) => OfArray(GgufValueType.UInt64, values);

    /// <summary>An array of Int64.</summary>
    public static GgufValue Of(long[] values) => OfArray(GgufValueType.Int64, values);

    /// <summary>An array of Float64.</summary>
    public static GgufValue Of(double[] values) => OfArray(GgufValueType.Float64, values);

    /// <summary>An array of arrays; every element must itself be an array value (GGUF has no arrays of scalars
    /// mixed with arrays).</summary>
    public static GgufValue Of(GgufValue[] arrays)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        for (int i = 0; i < arrays.Length; i++)
        {
            if (arrays[i] is not { Type: GgufValueType.Array })
                throw new ArgumentException($"element {i} of an array of arrays is {(arrays[i] == null ? "null" : arrays[i].Type.ToString())}, not an array", nameof(arrays));
        }
        return OfArray(GgufValueType.Array, arrays);
    }

    private static GgufValue OfArray<T>(GgufValueType elementType, T[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(GgufValueType.Array, values.Clone(), elementType);
    }
}
