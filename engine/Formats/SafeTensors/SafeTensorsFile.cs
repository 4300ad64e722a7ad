using System.Buffers.Binary;
using System.Text.Json;

namespace Tessera.Formats.SafeTensors;

/// <summary>
/// A <c>.safetensors</c> file, memory-mapped: an 8-byte little-endian header length, a JSON header
/// (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}</c>), then the
/// data, with offsets relative to the end of the header. The header is validated at open; tensor data stays in
/// the mapping. Every problem is a <see cref="ModelFormatException"/> naming the file (and the tensor).
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted, as in the reference implementation: a bigger one is a corrupt length.</summary>
    public const long MaxHeaderBytes = 100_000_000;
    private const string MetadataKey = "__metadata__";

    private readonly MappedFile _file;
    private readonly Dictionary<string, SafeTensorsTensor> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    private readonly List<SafeTensorsTensor> _tensors = [];

    private SafeTensorsFile(MappedFile file) => _file = file;

    /// <summary>Path the file was opened from.</summary>
    public string Path => _file.Path;

    /// <summary>Size of the file in bytes.</summary>
    public long FileLength => _file.Length;

    /// <summary>Absolute offset of the data section (8 + header length).</summary>
    public long DataSectionOffset { get; private set; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<SafeTensorsTensor> Tensors => _tensors;

    /// <summary>Opens and validates a safetensors file.</summary>
    /// <exception cref="ModelFormatException">The file is missing, unreadable or invalid.</exception>
    public static SafeTensorsFile Open(string path)
    {
        var mapped = MappedFile.Open(path, "safetensors");
        var file = new SafeTensorsFile(mapped);
        try
        {
            file.Parse();
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The tensor called <paramref name="name"/>, or null.</summary>
    public SafeTensorsTensor? FindTensor(string name) => _byName.GetValueOrDefault(name);

    /// <summary>The tensor called <paramref name="name"/>; a <see cref="ModelFormatException"/> when absent.</summary>
    public SafeTensorsTensor GetTensor(string name) =>
        FindTensor(name) ?? throw new ModelFormatException(Path, $"tensor '{name}' is missing");

    private void Parse()
    {
        if (FileLength < 8)
            throw new ModelFormatException(Path, $"file is truncated: {FileLength} bytes is shorter than the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_file.Pointer, 8));
        if (headerLength > (ulong)(FileLength - 8))
            throw new ModelFormatException(Path,
                $"file is truncated or not safetensors: header length {headerLength} runs past the end of the file ({FileLength} bytes)");
        if (headerLength > MaxHeaderBytes)
            throw new ModelFormatException(Path, $"header length {headerLength} is larger than the {MaxHeaderBytes} bytes accepted");
        DataSectionOffset = 8 + (long)headerLength;

        byte[] header = new ReadOnlySpan<byte>(_file.Pointer + 8, (int)headerLength).ToArray();
        // JsonDocument leaves invalid UTF-8 in names to fail later, outside any parse error handling.
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new ModelFormatException(Path, "header is not valid JSON: it is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(Path, $"header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(Path, $"header is a JSON {doc.RootElement.ValueKind}, not an object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(p.Name))
                    throw new ModelFormatException(Path, $"header names '{p.Name}' twice");
                if (p.Name == MetadataKey) ReadMetadata(p.Value);
                else ReadTensor(p.Name, p.Value);
            }
        }
        CheckNoOverlap();
    }

    private void ReadMetadata(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Null) return;
        if (e.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(Path, $"{MetadataKey} is a JSON {e.ValueKind}, not an object of strings");
        foreach (JsonProperty p in e.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new ModelFormatException(Path, $"{MetadataKey} entry '{p.Name}' is a JSON {p.Value.ValueKind}, not a string");
            _metadata[p.Name] = p.Value.GetString()!;
        }
    }

    private void ReadTensor(string name, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw Bad(name, $"entry is a JSON {e.ValueKind}, not an object with dtype, shape and data_offsets");

        if (!e.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad(name, "has no dtype string");
        string dtypeName = dtypeElement.GetString()!;
        if (!SafeTensorsDTypeInfo.TryParse(dtypeName, out var dtype))
            throw Bad(name, $"has unknown dtype '{dtypeName}'");

        if (!e.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Bad(name, "has no shape array");
        var shape = new long[shapeElement.GetArrayLength()];
        int axis = 0;
        foreach (JsonElement d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long extent) || extent < 0)
                throw Bad(name, $"shape axis {axis} is {d.GetRawText()}, not a non-negative integer");
            shape[axis++] = extent;
        }

        if (!e.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2
            || !TryOffset(offsets[0], out long begin) || !TryOffset(offsets[1], out long end))
            throw Bad(name, "data_offsets is not a pair of non-negative integers [begin, end]");

        long dataLength = FileLength - DataSectionOffset;
        if (begin > end || end > dataLength)
            throw Bad(name, $"data_offsets [{begin}, {end}] lie outside the data section ({dataLength} bytes): the file is truncated or corrupt");

        long expected = ExpectedBytes(shape, SafeTensorsDTypeInfo.ElementBytes(dtype));
        if (expected != end - begin)
            throw Bad(name, $"data_offsets [{begin}, {end}] hold {end - begin} bytes, but dtype {dtype} and shape [{string.Join(", ", shape)}] need {(expected < 0 ? "more than the file holds" : expected.ToString())}");

        long start = DataSectionOffset + begin;
        var t = new SafeTensorsTensor(Path, name, dtype, shape, start, end - begin, _file.Pointer + start);
        _tensors.Add(t);
        _byName[name] = t;
    }

    private static bool TryOffset(JsonElement e, out long value)
    {
        value = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out value) && value >= 0;
    }

    /// <summary>Byte size of a shape, or -1 when it would overflow (a corrupt shape never matches real offsets).</summary>
    private static long ExpectedBytes(long[] shape, int elementBytes)
    {
        long n = elementBytes;
        foreach (long d in shape)
        {
            if (d != 0 && n > long.MaxValue / d) return -1;
            n *= d;
        }
        return n;
    }

    /// <summary>Tensors sharing bytes mean a corrupt header (the format requires disjoint ranges).</summary>
    private void CheckNoOverlap()
    {
        var sorted = _tensors.Where(t => t.ByteSize > 0).OrderBy(t => t.DataOffset).ToList();
        for (int i = 1; i < sorted.Count; i++)
        {
            SafeTensorsTensor prev = sorted[i - 1], cur = sorted[i];
            if (cur.DataOffset < prev.DataOffset + prev.ByteSize)
                throw Bad(cur.Name, $"data (bytes {cur.DataOffset - DataSectionOffset} to {cur.DataOffset - DataSectionOffset + cur.ByteSize}) overlaps tensor '{prev.Name}' (bytes {prev.DataOffset - DataSectionOffset} to {prev.DataOffset - DataSectionOffset + prev.ByteSize})");
        }
    }

    private ModelFormatException Bad(string tensor, string problem) => new(Path, $"tensor '{tensor}' {problem}");

    /// <summary>Unmaps the file; tensor pointers are invalid afterwards.</summary>
    public void Dispose() => _file.Dispose();
}
