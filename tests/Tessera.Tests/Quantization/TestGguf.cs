using System.Text;
using Tessera.Quantization;

namespace Tessera.Tests.Quantization;

/// <summary>Just enough GGUF parsing to find tensor bytes, so the quantization tests do not depend on the real reader
/// (being written at the same time). Reads the whole (small) file into memory. To be replaced by GgufFile later.</summary>
internal sealed class TestGguf
{
    public sealed record Tensor(string Name, GgmlType Type, long[] Dims, long Offset)
    {
        public long Elements => Dims.Aggregate(1L, (a, b) => a * b);
        public int Cols => (int)Dims[0];
        public int Rows => (int)(Elements / Dims[0]);
    }

    private readonly byte[] _data;
    private readonly long _dataStart;
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    private TestGguf(byte[] data, long dataStart, Dictionary<string, Tensor> tensors)
    {
        _data = data;
        _dataStart = dataStart;
        Tensors = tensors;
    }

    public static TestGguf Open(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        using var r = new BinaryReader(new MemoryStream(data), Encoding.UTF8);
        if (r.ReadUInt32() != 0x46554747) throw new InvalidDataException($"{path}: not GGUF");
        uint version = r.ReadUInt32();
        if (version < 2) throw new InvalidDataException($"{path}: GGUF v{version} unsupported");
        ulong nTensors = r.ReadUInt64(), nKv = r.ReadUInt64();
        long alignment = 32;
        for (ulong i = 0; i < nKv; i++)
        {
            string key = ReadString(r);
            uint type = r.ReadUInt32();
            object? v = ReadValue(r, type);
            if (key == "general.alignment") alignment = Convert.ToInt64(v);
        }
        var tensors = new Dictionary<string, Tensor>();
        for (ulong i = 0; i < nTensors; i++)
        {
            string name = ReadString(r);
            uint nd = r.ReadUInt32();
            var dims = new long[nd];
            for (int d = 0; d < nd; d++) dims[d] = (long)r.ReadUInt64();
            var type = (GgmlType)r.ReadUInt32();
            long offset = (long)r.ReadUInt64();
            tensors[name] = new Tensor(name, type, dims, offset);
        }
        long pos = r.BaseStream.Position;
        long dataStart = (pos + alignment - 1) / alignment * alignment;
        return new TestGguf(data, dataStart, tensors);
    }

    /// <summary>The raw bytes of a tensor.</summary>
    public ReadOnlySpan<byte> Bytes(Tensor t)
        => _data.AsSpan((int)(_dataStart + t.Offset), (int)GgmlTypeInfo.RowBytes(t.Type, t.Elements));

    /// <summary>The bytes of one row (innermost dimension) of a tensor.</summary>
    public ReadOnlySpan<byte> Row(Tensor t, int row)
    {
        int rb = (int)GgmlTypeInfo.RowBytes(t.Type, t.Cols);
        return Bytes(t).Slice(row * rb, rb);
    }

    /// <summary>An F32 tensor's values.</summary>
    public float[] Floats(Tensor t)
    {
        if (t.Type != GgmlType.F32) throw new InvalidOperationException($"{t.Name} is {t.Type}");
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Bytes(t)).ToArray();
    }

    private static string ReadString(BinaryReader r)
    {
        ulong len = r.ReadUInt64();
        return Encoding.UTF8.GetString(r.ReadBytes((int)len));
    }

    private static object? ReadValue(BinaryReader r, uint type)
    {
        switch (type)
        {
            case 0: return r.ReadByte();
            case 1: return r.ReadSByte();
            case 2: return r.ReadUInt16();
            case 3: return r.ReadInt16();
            case 4: return r.ReadUInt32();
            case 5: return r.ReadInt32();
            case 6: return r.ReadSingle();
            case 7: return r.ReadByte() != 0;
            case 8: return ReadString(r);
            case 9:
                uint et = r.ReadUInt32();
                ulong count = r.ReadUInt64();
                for (ulong i = 0; i < count; i++) ReadValue(r, et);
                return null;
            case 10: return r.ReadUInt64();
            case 11: return r.ReadInt64();
            case 12: return r.ReadDouble();
            default: throw new InvalidDataException($"unknown GGUF value type {type}");
        }
    }
}
