using System.IO.MemoryMappedFiles;
using Tessera.Quantization;

namespace Tessera.Formats.Gguf;

/// <summary>
/// A GGUF file (versions 2 and 3), memory-mapped: metadata and tensor infos are parsed at open, tensor data stays in
/// the mapping and is never copied. Every inconsistency (truncation, wrong magic, unknown version or type, data past
/// the end of the file) is a <see cref="ModelFormatException"/> naming the file.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>The bytes 'GGUF' read as a little-endian uint.</summary>
    public const uint Magic = 0x46554747;
    private const int DefaultAlignment = 32;
    private const int MaxAlignment = 1 << 30;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;
    private readonly Dictionary<string, GgufValue> _metadata;
    private readonly Dictionary<string, GgufTensor> _tensorsByName;

    private GgufFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        FileLength = length;
        _metadata = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        _tensorsByName = new Dictionary<string, GgufTensor>(StringComparer.Ordinal);
        Tensors = [];
    }

    /// <summary>Path the file was opened from.</summary>
    public string Path { get; }

    /// <summary>GGUF version (2 or 3).</summary>
    public uint Version { get; private set; }

    /// <summary>Size of the file in bytes.</summary>
    public long FileLength { get; }

    /// <summary>Alignment of tensor data (<c>general.alignment</c>, 32 by default).</summary>
    public int Alignment { get; private set; } = DefaultAlignment;

    /// <summary>Absolute offset where the tensor data section starts.</summary>
    public long DataSectionOffset { get; private set; }

    /// <summary>All metadata key/value pairs, in file order of keys not guaranteed.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata => _metadata;

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensor> Tensors { get; private set; }

    /// <summary>Opens and validates a GGUF file.</summary>
    /// <exception cref="ModelFormatException">The file is missing, unreadable, or not a valid GGUF v2/v3 file.</exception>
    public static GgufFile Open(string path)
    {
        if (Directory.Exists(path)) throw new ModelFormatException(path, "is a directory, not a GGUF file");
        if (!File.Exists(path)) throw new ModelFormatException(path, "file not found");
        long length = MappedFile.LengthOf(path);
        // An empty file cannot be memory-mapped at all, so it needs its own message rather than an IOException.
        if (length == 0) throw new ModelFormatException(path, "file is empty (0 bytes)");
        if (length < 24)
            throw new ModelFormatException(path, $"file is truncated: {length} bytes is shorter than a GGUF header (24 bytes)");
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        GgufFile? file = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* ptr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
            ptr += view.PointerOffset;
            file = new GgufFile(path, map, view, ptr, length);
            file.Parse();
            return file;
        }
        catch (Exception e)
        {
            // Whatever went wrong, the mapping must not outlive the failed open.
            if (file != null) file.Dispose(); else { view?.Dispose(); map?.Dispose(); }
            if (e is IOException or UnauthorizedAccessException)
                throw new ModelFormatException(path, $"cannot read the file: {e.Message}", e);
            throw;
        }
    }

    private void Parse()
    {
        var r = new GgufReader(_base, FileLength, Path);
        uint magic = r.U32();
        if (magic != Magic)
            throw new ModelFormatException(Path,
                $"not a GGUF file: magic bytes are {DescribeMagic(magic)}, expected 'GGUF'");
        Version = r.U32();
        if (Version is not (2 or 3))
            throw new ModelFormatException(Path, $"unsupported GGUF version {Version} (Tessera reads versions 2 and 3)");
        ulong tensorCount = r.U64();
        ulong kvCount = r.U64();
        r.CheckCount(tensorCount, 8 + 4 + 4 + 8, "tensor");
        r.CheckCount(kvCount, 8 + 4, "metadata key");

        for (ulong i = 0; i < kvCount; i++)
        {
            r.Context = $"metadata entry {i}";
            string key = r.Str();
            r.Context = $"metadata key '{key}'";
            uint type = r.U32();
            _metadata[key] = ReadValue(ref r, type, key, depth: 0);
        }

        if (_metadata.TryGetValue("general.alignment", out var alignValue))
        {
            long a = alignValue.Value switch { uint u => u, int s => s, ulong ul => ul > int.MaxValue ? -1 : (long)ul, _ => -1 };
            if (a <= 0 || (a & (a - 1)) != 0)
                throw new ModelFormatException(Path, $"general.alignment is {alignValue}, which is not a positive power of two");
            // Offsets are computed in int-sized alignment arithmetic; no real file needs more than 1 GiB.
            if (a > MaxAlignment)
                throw new ModelFormatException(Path, $"general.alignment is {alignValue}, larger than the {MaxAlignment} bytes Tessera accepts");
            Alignment = (int)a;
        }

        var infos = new List<(string Name, GgmlType Type, long[] Dims, ulong Offset)>((int)tensorCount);
        for (ulong i = 0; i < tensorCount; i++)
        {
            r.Context = $"tensor info {i}";
            string name = r.Str();
            r.Context = $"tensor '{name}'";
            uint nDims = r.U32();
            if (nDims is 0 or > 4)
                throw new ModelFormatException(Path, $"tensor '{name}' has {nDims} dimensions (GGUF allows 1 to 4)");
            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong ne = r.U64();
                if (ne == 0 || ne > (1UL << 40))
                    throw new ModelFormatException(Path, $"tensor '{name}' has an invalid extent {ne} on axis {d}");
                dims[d] = (long)ne;
            }
            uint type = r.U32();
            if (!GgmlTypeInfo.IsKnown(type))
                throw new ModelFormatException(Path, $"tensor '{name}' has unknown type id {type}");
            ulong offset = r.U64();
            infos.Add((name, (GgmlType)type, dims, offset));
        }

        DataSectionOffset = AlignUp(r.Position, Alignment);
        var tensors = new List<GgufTensor>(infos.Count);
        foreach (var (name, type, dims, offset) in infos)
        {
            int bs = GgmlTypeInfo.BlockSize(type);
            if (dims[0] % bs != 0)
                throw new ModelFormatException(Path,
                    $"tensor '{name}' of type {type} has rows of {dims[0]} elements, not a multiple of the block size {bs}");
            // Size in blocks, refused as soon as it exceeds what the file could hold: a corrupt shape must not
            // overflow into a small (or negative) byte count that would pass the bounds check below.
            long maxBlocks = FileLength / GgmlTypeInfo.BlockBytes(type);
            long blocks = dims[0] / bs;
            for (int d = 1; d < dims.Length && blocks <= maxBlocks; d++)
                blocks = blocks > maxBlocks / dims[d] + 1 ? maxBlocks + 1 : blocks * dims[d];
            long start = DataSectionOffset + (long)Math.Min(offset, (ulong)long.MaxValue / 2);
            if (blocks > maxBlocks)
                throw new ModelFormatException(Path,
                    $"tensor '{name}' of type {type} and shape {ShapeOf(dims)} is larger than the whole file ({FileLength} bytes): the file is truncated or corrupt");
            long bytes = blocks * GgmlTypeInfo.BlockBytes(type);
            if (offset % (ulong)Alignment != 0)
                throw new ModelFormatException(Path, $"tensor '{name}' data offset {offset} is not aligned to {Alignment} bytes");
            if (offset > (ulong)FileLength || start + bytes > FileLength)
                throw new ModelFormatException(Path,
                    $"tensor '{name}' data ({bytes} bytes at offset {start}) extends past the end of the file ({FileLength} bytes): the file is truncated or corrupt");
            if (_tensorsByName.ContainsKey(name))
                throw new ModelFormatException(Path, $"tensor '{name}' appears twice");
            var t = new GgufTensor(name, type, dims, start, bytes, _base + start);
            tensors.Add(t);
            _tensorsByName[name] = t;
        }
        CheckNoOverlap(tensors);
        Tensors = tensors;
    }

    private GgufValue ReadValue(ref GgufReader r, uint type, string key, int depth)
    {
        switch ((GgufValueType)type)
        {
            case GgufValueType.UInt8: return new(GgufValueType.UInt8, r.U8());
            case GgufValueType.Int8: return new(GgufValueType.Int8, r.I8());
            case GgufValueType.UInt16: return new(GgufValueType.UInt16, r.U16());
            case GgufValueType.Int16: return new(GgufValueType.Int16, r.I16());
            case GgufValueType.UInt32: return new(GgufValueType.UInt32, r.U32());
            case GgufValueType.Int32: return new(GgufValueType.Int32, r.I32());
            case GgufValueType.Float32: return new(GgufValueType.Float32, r.F32());
            case GgufValueType.Bool: return new(GgufValueType.Bool, r.Bool());
            case GgufValueType.String: return new(GgufValueType.String, r.Str());
            case GgufValueType.UInt64: return new(GgufValueType.UInt64, r.U64());
            case GgufValueType.Int64: return new(GgufValueType.Int64, r.I64());
            case GgufValueType.Float64: return new(GgufValueType.Float64, r.F64());
            case GgufValueType.Array:
                if (depth > 4) throw new ModelFormatException(Path, $"metadata key '{key}': arrays nested too deeply");
                uint et = r.U32();
                ulong n = r.U64();
                r.CheckCount(n, ElementMinBytes(et, key), $"metadata key '{key}' array");
                if (n > (ulong)Array.MaxLength)
                    throw new ModelFormatException(Path, $"metadata key '{key}': array count {n} is larger than .NET arrays allow");
                return new(GgufValueType.Array, ReadArray(ref r, et, (int)n, key, depth), (GgufValueType)et);
            default:
                throw new ModelFormatException(Path, $"metadata key '{key}' has unknown value type {type}");
        }
    }

    private int ElementMinBytes(uint type, string key) => (GgufValueType)type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
        GgufValueType.Array => 12,
        _ => throw new ModelFormatException(Path, $"metadata key '{key}' is an array of unknown value type {type}"),
    };

    private Array ReadArray(ref GgufReader r, uint elementType, int n, string key, int depth)
    {
        switch ((GgufValueType)elementType)
        {
            case GgufValueType.UInt8: { var a = new byte[n]; for (int i = 0; i < n; i++) a[i] = r.U8(); return a; }
            case GgufValueType.Int8: { var a = new sbyte[n]; for (int i = 0; i < n; i++) a[i] = r.I8(); return a; }
            case GgufValueType.UInt16: { var a = new ushort[n]; for (int i = 0; i < n; i++) a[i] = r.U16(); return a; }
            case GgufValueType.Int16: { var a = new short[n]; for (int i = 0; i < n; i++) a[i] = r.I16(); return a; }
            case GgufValueType.UInt32: { var a = new uint[n]; for (int i = 0; i < n; i++) a[i] = r.U32(); return a; }
            case GgufValueType.Int32: { var a = new int[n]; for (int i = 0; i < n; i++) a[i] = r.I32(); return a; }
            case GgufValueType.Float32: { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = r.F32(); return a; }
            case GgufValueType.Bool: { var a = new bool[n]; for (int i = 0; i < n; i++) a[i] = r.Bool(); return a; }
            case GgufValueType.String: { var a = new string[n]; for (int i = 0; i < n; i++) a[i] = r.Str(); return a; }
            case GgufValueType.UInt64: { var a = new ulong[n]; for (int i = 0; i < n; i++) a[i] = r.U64(); return a; }
            case GgufValueType.Int64: { var a = new long[n]; for (int i = 0; i < n; i++) a[i] = r.I64(); return a; }
            case GgufValueType.Float64: { var a = new double[n]; for (int i = 0; i < n; i++) a[i] = r.F64(); return a; }
            case GgufValueType.Array:
                {
                    var a = new GgufValue[n];
                    for (int i = 0; i < n; i++) a[i] = ReadValue(ref r, (uint)GgufValueType.Array, key, depth + 1);
                    return a;
                }
            default:
                throw new ModelFormatException(Path, $"metadata key '{key}' is an array of unknown value type {elementType}");
        }
    }

    private static long AlignUp(long x, int a) => (x + a - 1) / a * a;

    private static string ShapeOf(long[] dims) => "[" + string.Join(", ", Enumerable.Reverse(dims)) + "]";

    /// <summary>Two tensors sharing bytes means a corrupt offset table (llama.cpp refuses such files too).</summary>
    private void CheckNoOverlap(List<GgufTensor> tensors)
    {
        var byOffset = tensors.Where(t => t.ByteSize > 0).OrderBy(t => t.DataOffset).ToList();
        for (int i = 1; i < byOffset.Count; i++)
        {
            GgufTensor prev = byOffset[i - 1], cur = byOffset[i];
            if (cur.DataOffset < prev.DataOffset + prev.ByteSize)
                throw new ModelFormatException(Path,
                    $"tensor '{cur.Name}' data at offset {cur.DataOffset} overlaps tensor '{prev.Name}' ({prev.ByteSize} bytes at offset {prev.DataOffset}): the file is corrupt");
        }
    }

    private static string DescribeMagic(uint magic)
    {
        Span<byte> b = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, magic);
        bool printable = true;
        foreach (byte c in b) printable &= c is >= 32 and < 127;
        return printable ? $"'{System.Text.Encoding.ASCII.GetString(b)}'" : $"0x{magic:X8}";
    }

    /// <summary>The tensor called <paramref name="name"/>, or null.</summary>
    public GgufTensor? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    /// <summary>The tensor called <paramref name="name"/>; throws a <see cref="ModelFormatException"/> when absent.</summary>
    public GgufTensor GetTensor(string name) =>
        FindTensor(name) ?? throw new ModelFormatException(Path, $"tensor '{name}' is missing");

    /// <summary>True when the file has the key.</summary>
    public bool Contains(string key) => _metadata.ContainsKey(key);

    /// <summary>A string value; throws naming the key when absent or of another type.</summary>
    public string GetString(string key) =>
        TryGetString(key, out var s) ? s : throw Missing(key, "a string");

    /// <summary>A string value, if present and a string.</summary>
    public bool TryGetString(string key, out string value)
    {
        if (_metadata.TryGetValue(key, out var v) && v.Value is string s) { value = s; return true; }
        value = "";
        return false;
    }

    /// <summary>An unsigned integer of any width and signedness (non-negative), if present.</summary>
    public bool TryGetUInt32(string key, out uint value)
    {
        value = 0;
        if (!_metadata.TryGetValue(key, out var v)) return false;
        long x = v.Value switch
        {
            byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint u => u, int i => i,
            ulong ul => ul > uint.MaxValue ? -1 : (long)ul, long l => l,
            _ => throw WrongType(key, v, "an integer"),
        };
        if (x < 0 || x > uint.MaxValue) throw new ModelFormatException(Path, $"metadata key '{key}' = {v} is out of range");
        value = (uint)x;
        return true;
    }

    /// <summary>An integer value; throws naming the key when absent.</summary>
    public uint GetUInt32(string key) => TryGetUInt32(key, out var v) ? v : throw Missing(key, "an integer");

    /// <summary>A float value (any float or integer type), if present.</summary>
    public bool TryGetFloat(string key, out float value)
    {
        value = 0;
        if (!_metadata.TryGetValue(key, out var v)) return false;
        value = v.Value switch
        {
            float f => f, double d => (float)d, uint u => u, int i => i, ulong ul => ul, long l => l,
            _ => throw WrongType(key, v, "a number"),
        };
        return true;
    }

    /// <summary>A boolean, if present.</summary>
    public bool TryGetBool(string key, out bool value)
    {
        value = false;
        if (!_metadata.TryGetValue(key, out var v)) return false;
        value = v.Value is bool b ? b : throw WrongType(key, v, "a boolean");
        return true;
    }

    /// <summary>A string array; throws naming the key when absent.</summary>
    public string[] GetStringArray(string key) =>
        TryGetArray<string>(key, out var a) ? a : throw Missing(key, "an array of strings");

    /// <summary>A float array, if present.</summary>
    public bool TryGetFloatArray(string key, out float[] value) => TryGetArray(key, out value);

    /// <summary>An int32 array (int32 or uint32 elements), if present.</summary>
    public bool TryGetInt32Array(string key, out int[] value)
    {
        if (TryGetArray(key, out value)) return true;
        if (_metadata.TryGetValue(key, out var v) && v.Value is uint[] u)
        {
            value = Array.ConvertAll(u, x => (int)x);
            return true;
        }
        return false;
    }

    private bool TryGetArray<T>(string key, out T[] value)
    {
        value = [];
        if (!_metadata.TryGetValue(key, out var v)) return false;
        value = v.Value as T[] ?? throw WrongType(key, v, $"an array of {typeof(T).Name}");
        return true;
    }

    private ModelFormatException Missing(string key, string what) =>
        new(Path, $"metadata key '{key}' ({what}) is missing");

    private ModelFormatException WrongType(string key, GgufValue v, string what) =>
        new(Path, $"metadata key '{key}' should be {what} but is {v.Type}{(v.Type == GgufValueType.Array ? " of " + v.ElementType : "")}");

    /// <summary>True once <see cref="Dispose"/> has run: tensor pointers are then invalid (checked by
    /// <see cref="GgufWriter"/> before copying a tensor out of the mapping).</summary>
    internal bool IsDisposed => _base == null;

    /// <summary>Unmaps the file; tensor pointers are invalid afterwards.</summary>
    public void Dispose()
    {
        if (_base != null && _view != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
