using Tessera.Quantization;

namespace Tessera.Formats.Gguf;

/// <summary>
/// A tensor in a GGUF file. <see cref="Dimensions"/> are in GGUF order: <c>Dimensions[0]</c> is the length of a row
/// (the contiguous axis), so a weight matrix of <c>rows x cols</c> is stored as <c>[cols, rows]</c>.
/// </summary>
public sealed unsafe class GgufTensor
{
    internal GgufTensor(string name, GgmlType type, long[] dimensions, long dataOffset, long byteSize, byte* data)
    {
        Name = name;
        Type = type;
        Dimensions = dimensions;
        DataOffset = dataOffset;
        ByteSize = byteSize;
        Data = data;
    }

    /// <summary>Tensor name, e.g. <c>blk.0.attn_q.weight</c>.</summary>
    public string Name { get; }

    /// <summary>Element type.</summary>
    public GgmlType Type { get; }

    /// <summary>Extent of each axis, innermost first.</summary>
    public IReadOnlyList<long> Dimensions { get; }

    /// <summary>Total number of elements.</summary>
    public long ElementCount
    {
        get { long n = 1; foreach (long d in Dimensions) n *= d; return n; }
    }

    /// <summary>Length of a row (the innermost axis).</summary>
    public long RowLength => Dimensions[0];

    /// <summary>Number of rows (product of the outer axes).</summary>
    public long RowCount => ElementCount / Dimensions[0];

    /// <summary>Absolute offset of the data in the file.</summary>
    public long DataOffset { get; }

    /// <summary>Bytes of data.</summary>
    public long ByteSize { get; }

    /// <summary>The data, inside the file's memory mapping (valid while the file is open).</summary>
    public byte* Data { get; }

    /// <summary>The data as a span; only for tensors under 2 GiB.</summary>
    public ReadOnlySpan<byte> Span => new(Data, checked((int)ByteSize));

    /// <summary>Shape as text, outermost first like PyTorch (<c>[2048, 128]</c> for 2048 rows of 128).</summary>
    public string ShapeText => "[" + string.Join(", ", Dimensions.Reverse()) + "]";
}
