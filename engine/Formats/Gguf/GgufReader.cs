using System.Text;

namespace Tessera.Formats.Gguf;

/// <summary>Bounds-checked little-endian reader over the mapped header; every overrun is a clear truncation error.</summary>
internal unsafe struct GgufReader
{
    private readonly byte* _base;
    private readonly long _length;
    private readonly string _path;

    public GgufReader(byte* data, long length, string path)
    {
        _base = data;
        _length = length;
        _path = path;
        Position = 0;
    }

    public long Position { get; private set; }

    /// <summary>What is being read, for error messages ("metadata key 'x'").</summary>
    public string Context { get; set; } = "header";

    private byte* Take(long count)
    {
        if (count < 0 || Position + count > _length)
            throw new ModelFormatException(_path,
                $"file is truncated: {Context} needs {count} bytes at offset {Position}, but the file is {_length} bytes");
        byte* p = _base + Position;
        Position += count;
        return p;
    }

    public byte U8() => *Take(1);
    public sbyte I8() => (sbyte)*Take(1);
    public ushort U16() => *(ushort*)Take(2);
    public short I16() => *(short*)Take(2);
    public uint U32() => *(uint*)Take(4);
    public int I32() => *(int*)Take(4);
    public float F32() => *(float*)Take(4);
    public ulong U64() => *(ulong*)Take(8);
    public long I64() => *(long*)Take(8);
    public double F64() => *(double*)Take(8);

    public bool Bool()
    {
        byte b = U8();
        if (b > 1) throw new ModelFormatException(_path, $"{Context}: boolean byte {b} at offset {Position - 1} is neither 0 nor 1");
        return b == 1;
    }

    public string Str()
    {
        ulong len = U64();
        if (len > (ulong)(_length - Position))
            throw new ModelFormatException(_path,
                $"file is truncated or corrupt: {Context} declares a string of {len} bytes at offset {Position - 8}, past the end of the file ({_length} bytes)");
        if (len > int.MaxValue)
            throw new ModelFormatException(_path, $"{Context} declares a string of {len} bytes at offset {Position - 8}, larger than Tessera reads (2 GiB)");
        byte* p = Take((long)len);
        return Encoding.UTF8.GetString(p, (int)len);
    }

    /// <summary>Checks that <paramref name="count"/> elements of at least <paramref name="minBytes"/> each can still fit.</summary>
    public void CheckCount(ulong count, int minBytes, string what)
    {
        if (count > (ulong)(_length - Position) / (ulong)Math.Max(1, minBytes))
            throw new ModelFormatException(_path,
                $"file is truncated or corrupt: {what} count {count} at offset {Position} cannot fit in the remaining {_length - Position} bytes");
    }
}
