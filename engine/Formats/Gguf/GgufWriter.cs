using System.Buffers.Binary;
using System.Text;
using Tessera.Quantization;

namespace Tessera.Formats.Gguf;

/// <summary>
/// Writes GGUF version 3 files: metadata, tensor infos, then the data section with every tensor aligned to
/// <see cref="Alignment"/> (and padded to it, as llama.cpp does, so a file re-written from a llama.cpp file comes out
/// byte for byte the same). Tensor data is not held: each tensor is produced by a callback when the file is
/// written, so models larger than memory can be written from a memory-mapped source or a quantizer.
/// </summary>
/// <remarks>Caller mistakes (bad names, shapes, sizes, alignment) are <see cref="ArgumentException"/>s at the call
/// that makes them; a callback that writes the wrong number of bytes is an <see cref="InvalidOperationException"/>
/// during <see cref="WriteTo"/>.</remarks>
public sealed class GgufWriter
{
    /// <summary>Longest tensor name in bytes: llama.cpp keeps names in a 64-byte buffer with a terminating NUL.</summary>
    public const int MaxTensorNameBytes = 63;
    private const string AlignmentKey = "general.alignment";
    private const int DefaultAlignment = 32;

    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    private sealed record PendingTensor(string Name, GgmlType Type, long[] Dimensions, long ByteSize, Action<Stream> Write);

    /// <summary>Alignment of tensor data: the value of <c>general.alignment</c> when set, else 32.</summary>
    public int Alignment { get; private set; } = DefaultAlignment;

    /// <summary>Metadata set so far, in the order it will be written.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => _metadata;

    /// <summary>Number of tensors added so far.</summary>
    public int TensorCount => _tensors.Count;

    /// <summary>
    /// Sets a metadata value; setting a key again replaces the value in place (the key keeps its position).
    /// <c>general.alignment</c> must be a UInt32 power of two and changes <see cref="Alignment"/>.
    /// </summary>
    public void Set(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (key == AlignmentKey)
        {
            if (value.Value is not uint a || a == 0 || (a & (a - 1)) != 0 || a > 1u << 30)
                throw new ArgumentException($"{AlignmentKey} must be a UInt32 power of two up to 2^30, got {value.Type} {value}", nameof(value));
            Alignment = (int)a;
        }
        int i = _metadata.FindIndex(kv => kv.Key == key);
        if (i >= 0) _metadata[i] = new(key, value);
        else _metadata.Add(new(key, value));
    }

    /// <summary>Removes a metadata key; returns false when it was not set.</summary>
    public bool Remove(string key)
    {
        int i = _metadata.FindIndex(kv => kv.Key == key);
        if (i < 0) return false;
        _metadata.RemoveAt(i);
        if (key == AlignmentKey) Alignment = DefaultAlignment;
        return true;
    }

    /// <summary>
    /// Adds a tensor whose data is produced by <paramref name="writeData"/> when the file is written. The callback
    /// must write exactly <see cref="GgmlTypeInfo.RowBytes"/> of a row times the number of rows.
    /// </summary>
    /// <param name="name">Tensor name, unique, at most <see cref="MaxTensorNameBytes"/> UTF-8 bytes.</param>
    /// <param name="type">Element type.</param>
    /// <param name="dimensions">Extents innermost first (GGUF order), 1 to 4 of them, each at least 1; the first a
    /// multiple of the type's block size.</param>
    /// <param name="writeData">Writes the tensor's bytes to the stream it is given (and must not keep it).</param>
    /// <returns>The tensor's size in bytes.</returns>
    public long AddTensor(string name, GgmlType type, IReadOnlyList<long> dimensions, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        long bytes = CheckTensor(name, type, dimensions);
        _tensors.Add(new PendingTensor(name, type, [.. dimensions], bytes, writeData));
        _tensorNames.Add(name);
        return bytes;
    }

    /// <summary>Adds a tensor whose bytes are already in memory (they are not copied: keep them unchanged until
    /// the file is written).</summary>
    /// <param name="name">Tensor name, unique, at most <see cref="MaxTensorNameBytes"/> UTF-8 bytes.</param>
    /// <param name="type">Element type.</param>
    /// <param name="dimensions">Extents innermost first (GGUF order).</param>
    /// <param name="data">Exactly the tensor's bytes.</param>
    public void AddTensor(string name, GgmlType type, IReadOnlyList<long> dimensions, ReadOnlyMemory<byte> data)
    {
        long bytes = CheckTensor(name, type, dimensions);
        if (data.Length != bytes)
            throw new ArgumentException($"tensor '{name}' of type {type} and shape [{string.Join(", ", dimensions)}] (innermost first) takes {bytes} bytes, but {data.Length} were given", nameof(data));
        _tensors.Add(new PendingTensor(name, type, [.. dimensions], bytes, s => s.Write(data.Span)));
        _tensorNames.Add(name);
    }

    /// <summary>Adds a copy of a tensor of an open GGUF file, under its own name or <paramref name="name"/>. The data
    /// is read from the file's mapping when the file is written, so <paramref name="source"/> must still be open then.</summary>
    public void AddTensor(GgufFile source, GgufTensor tensor, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tensor);
        if (!ReferenceEquals(source.FindTensor(tensor.Name), tensor))
            throw new ArgumentException($"tensor '{tensor.Name}' does not belong to {source.Path}", nameof(tensor));
        AddTensor(name ?? tensor.Name, tensor.Type, tensor.Dimensions, s => CopyMapped(source, tensor, s));
    }

    private long CheckTensor(string name, GgmlType type, IReadOnlyList<long> dimensions)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(dimensions);
        if (Encoding.UTF8.GetByteCount(name) > MaxTensorNameBytes)
            throw new ArgumentException($"tensor name '{name}' is longer than {MaxTensorNameBytes} bytes", nameof(name));
        if (_tensorNames.Contains(name))
            throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        if (!Enum.IsDefined(type))
            throw new ArgumentException($"tensor '{name}': unknown type {(int)type}", nameof(type));
        if (dimensions.Count is 0 or > 4)
            throw new ArgumentException($"tensor '{name}' has {dimensions.Count} dimensions (GGUF allows 1 to 4)", nameof(dimensions));
        long elements = 1;
        foreach (long d in dimensions)
        {
            if (d < 1) throw new ArgumentException($"tensor '{name}' has an extent of {d}", nameof(dimensions));
            elements = checked(elements * d);
        }
        int bs = GgmlTypeInfo.BlockSize(type);
        if (dimensions[0] % bs != 0)
            throw new ArgumentException($"tensor '{name}' of type {type} has rows of {dimensions[0]} elements, not a multiple of the block size {bs}", nameof(dimensions));
        return checked(elements / bs * GgmlTypeInfo.BlockBytes(type));
    }

    /// <summary>Writes the file to <paramref name="path"/> through a temporary file beside it, so that a failure
    /// (or a crash) never leaves a half-written file under the final name.</summary>
    public void WriteFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = System.IO.Path.GetFullPath(path);
        string temp = full + $".{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                WriteTo(fs);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Writes the whole file to <paramref name="destination"/> (which need not be seekable), calling each
    /// tensor's data callback in turn.</summary>
    public void WriteTo(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var buffered = new BufferedStream(destination, 1 << 20);
        var output = new CountingStream(buffered);

        WriteU32(output, GgufFile.Magic);
        WriteU32(output, 3);
        WriteU64(output, (ulong)_tensors.Count);
        WriteU64(output, (ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(output, key);
            WriteU32(output, (uint)value.Type);
            WriteValue(output, value);
        }

        // Offsets are relative to the data section and known before any data is written: that is what lets the
        // data be streamed in one pass.
        long offset = 0;
        foreach (var t in _tensors)
        {
            WriteString(output, t.Name);
            WriteU32(output, (uint)t.Dimensions.Length);
            foreach (long d in t.Dimensions) WriteU64(output, (ulong)d);
            WriteU32(output, (uint)t.Type);
            WriteU64(output, (ulong)offset);
            offset += AlignUp(t.ByteSize);
        }

        // A file without tensors has no data section (llama.cpp's vocab-only files end right after the header).
        if (_tensors.Count > 0) Pad(output);
        foreach (var t in _tensors)
        {
            long before = output.Written;
            t.Write(output);
            long written = output.Written - before;
            if (written != t.ByteSize)
                throw new InvalidOperationException($"the data callback of tensor '{t.Name}' wrote {written} bytes instead of {t.ByteSize}");
            Pad(output);
        }
        output.Flush();
    }

    private long AlignUp(long x) => (x + Alignment - 1) / Alignment * Alignment;

    private static readonly byte[] Zeros = new byte[4096];

    private void Pad(CountingStream s)
    {
        // Alignment may be as large as 2^30, so zeros are written in chunks rather than from one stack buffer.
        for (long n = AlignUp(s.Written) - s.Written; n > 0; n -= Zeros.Length)
            s.Write(Zeros.AsSpan(0, (int)Math.Min(n, Zeros.Length)));
    }

    private static unsafe void CopyMapped(GgufFile source, GgufTensor tensor, Stream s)
    {
        if (source.IsDisposed)
            throw new ObjectDisposedException(source.Path, $"tensor '{tensor.Name}' is copied from {source.Path}, which was closed before the file was written");
        const int Chunk = 1 << 24;
        for (long done = 0; done < tensor.ByteSize; done += Chunk)
            s.Write(new ReadOnlySpan<byte>(tensor.Data + done, (int)Math.Min(Chunk, tensor.ByteSize - done)));
    }

    private static void WriteValue(Stream s, GgufValue v)
    {
        switch (v.Value)
        {
            case byte x: s.WriteByte(x); break;
            case sbyte x: s.WriteByte((byte)x); break;
            case ushort x: WriteU16(s, x); break;
            case short x: WriteU16(s, (ushort)x); break;
            case uint x: WriteU32(s, x); break;
            case int x: WriteU32(s, (uint)x); break;
            case float x: WriteU32(s, BitConverter.SingleToUInt32Bits(x)); break;
            case bool x: s.WriteByte(x ? (byte)1 : (byte)0); break;
            case string x: WriteString(s, x); break;
            case ulong x: WriteU64(s, x); break;
            case long x: WriteU64(s, (ulong)x); break;
            case double x: WriteU64(s, BitConverter.DoubleToUInt64Bits(x)); break;
            case Array a:
                WriteU32(s, (uint)v.ElementType);
                WriteU64(s, (ulong)a.Length);
                WriteArray(s, a);
                break;
            default:
                throw new ArgumentException($"cannot write a metadata value of .NET type {v.Value.GetType().Name}");
        }
    }

    private static void WriteArray(Stream s, Array a)
    {
        switch (a)
        {
            case bool[] x: foreach (bool b in x) s.WriteByte(b ? (byte)1 : (byte)0); break;
            case string[] x: foreach (string e in x) WriteString(s, e); break;
            case GgufValue[] x: foreach (var e in x) WriteValue(s, e); break;
            // Numeric arrays are written as their memory, which is the file's little-endian layout.
            case byte[] x: s.Write(x); break;
            case sbyte[] x: WriteRaw(s, x); break;
            case ushort[] x: WriteRaw(s, x); break;
            case short[] x: WriteRaw(s, x); break;
            case uint[] x: WriteRaw(s, x); break;
            case int[] x: WriteRaw(s, x); break;
            case float[] x: WriteRaw(s, x); break;
            case ulong[] x: WriteRaw(s, x); break;
            case long[] x: WriteRaw(s, x); break;
            case double[] x: WriteRaw(s, x); break;
            default:
                throw new ArgumentException($"cannot write a metadata array of .NET type {a.GetType().Name}");
        }
    }

    private static void WriteRaw<T>(Stream s, T[] x) where T : unmanaged
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("GGUF writing needs a little-endian machine");
        s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()));
    }

    private static void WriteString(Stream s, string x)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(x);
        WriteU64(s, (ulong)bytes.Length);
        s.Write(bytes);
    }

    private static void WriteU16(Stream s, ushort x)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, x);
        s.Write(b);
    }

    private static void WriteU32(Stream s, uint x)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, x);
        s.Write(b);
    }

    private static void WriteU64(Stream s, ulong x)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, x);
        s.Write(b);
    }
}
