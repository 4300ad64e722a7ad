using Tessera.Quantization;

namespace Tessera.Formats.SafeTensors;

/// <summary>
/// A tensor in a safetensors file. <see cref="Shape"/> is outermost first, as PyTorch writes it: a Linear weight of
/// <c>out x in</c> is <c>[out, in]</c>, rows of <c>in</c> contiguous elements.
/// </summary>
public sealed unsafe class SafeTensorsTensor
{
    internal SafeTensorsTensor(string filePath, string name, SafeTensorsDType dtype, long[] shape, long dataOffset, long byteSize, byte* data)
    {
        FilePath = filePath;
        Name = name;
        DType = dtype;
        Shape = shape;
        DataOffset = dataOffset;
        ByteSize = byteSize;
        Data = data;
    }

    /// <summary>The file (shard) holding the tensor, for messages.</summary>
    public string FilePath { get; }

    /// <summary>Tensor name, e.g. <c>model.layers.0.self_attn.q_proj.weight</c>.</summary>
    public string Name { get; }

    /// <summary>Element type.</summary>
    public SafeTensorsDType DType { get; }

    /// <summary>Extent of each axis, outermost first; empty for a scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Extent of each axis innermost first, the order of <see cref="Gguf.GgufTensor.Dimensions"/>.</summary>
    public IReadOnlyList<long> GgmlDimensions => Shape.Count == 0 ? [1L] : [.. Shape.Reverse()];

    /// <summary>Total number of elements (1 for a scalar).</summary>
    public long ElementCount
    {
        get { long n = 1; foreach (long d in Shape) n *= d; return n; }
    }

    /// <summary>Absolute offset of the data in the file.</summary>
    public long DataOffset { get; }

    /// <summary>Bytes of data.</summary>
    public long ByteSize { get; }

    /// <summary>The data, inside the file's memory mapping (valid while the file is open). Safetensors does not
    /// align data, so it may be at any address.</summary>
    public byte* Data { get; }

    /// <summary>The data as a span; only for tensors under 2 GiB.</summary>
    public ReadOnlySpan<byte> Span => new(Data, checked((int)ByteSize));

    /// <summary>True when Tessera can compute with the dtype (F32, F16, BF16).</summary>
    public bool IsComputeType => SafeTensorsDTypeInfo.IsComputeType(DType);

    /// <summary>The GGML type with this tensor's layout; a <see cref="ModelFormatException"/> naming the file and
    /// tensor when the dtype is one Tessera does not compute with (an integer or 8-bit float).</summary>
    public GgmlType ComputeType => SafeTensorsDTypeInfo.ToGgmlType(DType) ?? throw new ModelFormatException(FilePath,
        $"tensor '{Name}' has dtype {DType}, which Tessera does not support for compute (F32, F16 and BF16 only)");

    /// <summary>Shape as text, outermost first (<c>[2048, 128]</c>).</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
