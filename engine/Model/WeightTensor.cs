using Tessera.Quantization;

namespace Tessera.Model;

/// <summary>
/// A weight matrix (or vector) in its file's type, pointing into the file's memory mapping: <see cref="Rows"/> rows of
/// <see cref="Cols"/> elements each, row-major. Never expanded to float32 as a whole.
/// </summary>
public sealed unsafe class WeightTensor
{
    /// <summary>Wraps <paramref name="data"/>; the caller keeps the memory alive as long as the tensor.</summary>
    public WeightTensor(string name, GgmlType type, int rows, int cols, byte* data, long byteSize)
    {
        long expected = GgmlTypeInfo.RowBytes(type, cols) * rows;
        if (expected != byteSize)
            throw new ArgumentException($"tensor '{name}': {rows}x{cols} {type} needs {expected} bytes, got {byteSize}");
        Name = name;
        Type = type;
        Rows = rows;
        Cols = cols;
        Data = data;
        ByteSize = byteSize;
        RowBytes = GgmlTypeInfo.RowBytes(type, cols);
    }

    /// <summary>Name in the file.</summary>
    public string Name { get; }
    /// <summary>Element type.</summary>
    public GgmlType Type { get; }
    /// <summary>Number of rows (output features of a projection).</summary>
    public int Rows { get; }
    /// <summary>Elements per row (input features of a projection).</summary>
    public int Cols { get; }
    /// <summary>Start of the data.</summary>
    public byte* Data { get; }
    /// <summary>Total bytes.</summary>
    public long ByteSize { get; }
    /// <summary>Bytes per row.</summary>
    public long RowBytes { get; }

    /// <summary>The bytes of row <paramref name="r"/>.</summary>
    public ReadOnlySpan<byte> Row(int r) => new(Data + r * RowBytes, checked((int)RowBytes));

    /// <summary>Rows <paramref name="first"/> .. first + count − 1 as a tensor of their own, in place (a fused QKV or
    /// gate/up tensor's parts: every row is whole blocks, so a run of rows is a valid tensor).</summary>
    public WeightTensor RowRange(int first, int count, string name)
    {
        if (first < 0 || count <= 0 || first + count > Rows)
            throw new ArgumentOutOfRangeException(nameof(count), $"tensor '{Name}': rows {first}..{first + count - 1} of {Rows}");
        return new WeightTensor(name, Type, count, Cols, Data + first * RowBytes, count * RowBytes);
    }

    /// <summary>The whole tensor dequantized to float32 (only for small tensors such as norm weights).</summary>
    public float[] ToFloat32()
    {
        var result = new float[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++) Dequantizer.DequantizeRow(Type, Row(r), result.AsSpan(r * Cols, Cols));
        return result;
    }
}
