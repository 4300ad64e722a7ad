using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Tessera.Tests.Formats;

/// <summary>Builds safetensors files for tests: tensors packed in order, header written by Utf8JsonWriter.
/// <see cref="Build"/> also takes a raw header, for malformed files.</summary>
internal sealed class SafeTensorsBuilder
{
    private readonly List<(string Name, string DType, long[] Shape, byte[] Data)> _tensors = [];
    private readonly Dictionary<string, string> _metadata = [];

    public SafeTensorsBuilder Add(string name, string dtype, long[] shape, byte[] data)
    {
        _tensors.Add((name, dtype, shape, data));
        return this;
    }

    public SafeTensorsBuilder Meta(string key, string value)
    {
        _metadata[key] = value;
        return this;
    }

    public string Header()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (_metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in _metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, dtype, shape, data) in _tensors)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (long d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += data.Length;
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    public byte[] Data() => _tensors.SelectMany(t => t.Data).ToArray();

    public byte[] Build() => Build(Header(), Data());

    /// <summary>A file from a header text and data; the header is padded with spaces to 8 bytes as the format's
    /// writer does.</summary>
    public static byte[] Build(string header, byte[] data)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        int padded = (h.Length + 7) / 8 * 8;
        var file = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
        h.CopyTo(file, 8);
        file.AsSpan(8 + h.Length, padded - h.Length).Fill((byte)' ');
        data.CopyTo(file, 8 + padded);
        return file;
    }
}
