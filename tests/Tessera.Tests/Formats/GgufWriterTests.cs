using NUnit.Framework;
using Tessera.Formats.Gguf;
using Tessera.Quantization;

namespace Tessera.Tests.Formats;

[TestFixture]
public class GgufWriterTests
{
    private static readonly (string Key, GgufValue Value)[] EveryValueType =
    [
        ("u8", GgufValue.Of((byte)200)),
        ("i8", GgufValue.Of((sbyte)-100)),
        ("u16", GgufValue.Of((ushort)65000)),
        ("i16", GgufValue.Of((short)-32000)),
        ("u32", GgufValue.Of(4_000_000_000u)),
        ("i32", GgufValue.Of(-2_000_000_000)),
        ("f32", GgufValue.Of(1e-6f)),
        ("bool.true", GgufValue.Of(true)),
        ("bool.false", GgufValue.Of(false)),
        ("string", GgufValue.Of("héllo ▁world 🦙")),
        ("string.empty", GgufValue.Of("")),
        ("u64", GgufValue.Of(ulong.MaxValue)),
        ("i64", GgufValue.Of(long.MinValue)),
        ("f64", GgufValue.Of(Math.PI)),
        ("arr.u8", GgufValue.Of(new byte[] { 0, 1, 255 })),
        ("arr.i8", GgufValue.Of(new sbyte[] { -128, 0, 127 })),
        ("arr.u16", GgufValue.Of(new ushort[] { 0, 65535 })),
        ("arr.i16", GgufValue.Of(new short[] { -32768, 32767 })),
        ("arr.u32", GgufValue.Of(new uint[] { 0, uint.MaxValue })),
        ("arr.i32", GgufValue.Of(new[] { int.MinValue, 0, int.MaxValue })),
        ("arr.f32", GgufValue.Of(new[] { -0.0f, float.PositiveInfinity, 3.5f })),
        ("arr.bool", GgufValue.Of(new[] { true, false, true })),
        ("arr.string", GgufValue.Of(new[] { "<s>", "", "▁the", "日本" })),
        ("arr.u64", GgufValue.Of(new ulong[] { 0, ulong.MaxValue })),
        ("arr.i64", GgufValue.Of(new long[] { long.MinValue, long.MaxValue })),
        ("arr.f64", GgufValue.Of(new[] { double.Epsilon, -1e300 })),
        ("arr.empty", GgufValue.Of(Array.Empty<int>())),
        ("arr.arr", GgufValue.Of(new[]
        {
            GgufValue.Of(new[] { "a", "b" }),
            GgufValue.Of(new[] { 1, 2, 3 }),
            GgufValue.Of(new[] { GgufValue.Of(new[] { 1.5 }) }),
            GgufValue.Of(Array.Empty<string>()),
        })),
    ];

    [Test]
    public void EveryValueTypeRoundTrips()
    {
        using var dir = new TempDirectory();
        var w = new GgufWriter();
        foreach (var (k, v) in EveryValueType) w.Set(k, v);
        string path = dir.File("values.gguf");
        w.WriteFile(path);

        using var f = GgufFile.Open(path);
        Assert.That(f.Version, Is.EqualTo(3u));
        Assert.That(f.Tensors, Is.Empty);
        Assert.That(f.Metadata.Keys, Is.EqualTo(EveryValueType.Select(e => e.Key)));
        foreach (var (k, expected) in EveryValueType) AssertSameValue(f.Metadata[k], expected, k);
    }

    private static void AssertSameValue(GgufValue actual, GgufValue expected, string where)
    {
        Assert.That(actual.Type, Is.EqualTo(expected.Type), where);
        if (expected.Type != GgufValueType.Array)
        {
            Assert.That(actual.Value, Is.EqualTo(expected.Value), where);
            Assert.That(actual.Value.GetType(), Is.EqualTo(expected.Value.GetType()), where);
            return;
        }
        Assert.That(actual.ElementType, Is.EqualTo(expected.ElementType), where);
        Assert.That(actual.Value.GetType(), Is.EqualTo(expected.Value.GetType()), where);
        if (expected.Value is GgufValue[] nested)
        {
            var got = (GgufValue[])actual.Value;
            Assert.That(got, Has.Length.EqualTo(nested.Length), where);
            for (int i = 0; i < nested.Length; i++) AssertSameValue(got[i], nested[i], $"{where}[{i}]");
        }
        else Assert.That(actual.Value, Is.EqualTo(expected.Value), where);
    }

    [Test]
    public void TensorsAreAlignedAndReadBack([Values(1u, 8u, 32u, 64u, 4096u)] uint alignment)
    {
        using var dir = new TempDirectory();
        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.Of("test"));
        w.Set("general.alignment", GgufValue.Of(alignment));
        Assert.That(w.Alignment, Is.EqualTo((int)alignment));
        var rng = new Random(1);
        var data = new Dictionary<string, byte[]>();
        (string Name, GgmlType Type, long[] Dims)[] specs =
        [
            ("a", GgmlType.F32, [3]),               // 12 bytes: the next tensor needs padding
            ("b", GgmlType.Q8_0, [64, 3]),          // 6 blocks of 34
            ("c", GgmlType.F16, [5, 1, 1, 7]),
            ("d", GgmlType.Q4_K, [256, 2]),
            ("e", GgmlType.I8, [1]),
        ];
        foreach (var (name, type, dims) in specs)
        {
            var bytes = new byte[GgmlTypeInfo.RowBytes(type, dims[0]) * dims.Skip(1).Aggregate(1L, (x, y) => x * y)];
            rng.NextBytes(bytes);
            data[name] = bytes;
            // Half through memory, half streamed in small pieces, to cover both paths.
            if (name is "a" or "c") w.AddTensor(name, type, dims, bytes);
            else w.AddTensor(name, type, dims, s => { foreach (var chunk in bytes.Chunk(7)) s.Write(chunk); });
        }
        string path = dir.File("tensors.gguf");
        w.WriteFile(path);

        using var f = GgufFile.Open(path);
        Assert.That(f.Alignment, Is.EqualTo((int)alignment));
        Assert.That(f.FileLength % alignment, Is.Zero, "the last tensor is padded too, as llama.cpp does");
        Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(specs.Select(s => s.Name)));
        foreach (var (name, type, dims) in specs)
        {
            var t = f.GetTensor(name);
            Assert.That(t.Type, Is.EqualTo(type));
            Assert.That(t.Dimensions, Is.EqualTo(dims));
            Assert.That(t.DataOffset % alignment, Is.Zero);
            Assert.That(t.Span.ToArray(), Is.EqualTo(data[name]), name);
        }
    }

    /// <summary>llama.cpp's files are packed the same way the writer packs, so copying every key and tensor of one
    /// in order must give back the very same bytes; that checks every value type and the layout against a real file.</summary>
    [TestCase("models", "tinystories-656k-q8_0.gguf")]
    [TestCase("models", "rand-llama-d256-q4_k_m.gguf")]
    [TestCase("models", "tinystories-656k-bf16.gguf")]
    [TestCase("vocab", "ggml-vocab-llama-spm.gguf")]
    public void RewritingASharedFileGivesTheSameFile(string folder, string name)
    {
        using var dir = new TempDirectory();
        string original = SharedData.Path(folder, name);
        string copy = dir.File(name);
        using (var src = GgufFile.Open(original))
        {
            var w = new GgufWriter();
            foreach (var (k, v) in src.Metadata) w.Set(k, v);
            foreach (var t in src.Tensors) w.AddTensor(src, t);
            w.WriteFile(copy);
        }

        using (var a = GgufFile.Open(original))
        using (var b = GgufFile.Open(copy))
        {
            Assert.That(b.Metadata.Keys, Is.EqualTo(a.Metadata.Keys));
            foreach (var (k, v) in a.Metadata) AssertSameValue(b.Metadata[k], v, k);
            Assert.That(b.Tensors.Select(t => (t.Name, t.Type, string.Join(",", t.Dimensions), t.DataOffset, t.ByteSize)),
                Is.EqualTo(a.Tensors.Select(t => (t.Name, t.Type, string.Join(",", t.Dimensions), t.DataOffset, t.ByteSize))));
            foreach (var t in a.Tensors)
                Assert.That(b.GetTensor(t.Name).Span.SequenceEqual(t.Span), Is.True, t.Name);
        }
        Assert.That(File.ReadAllBytes(copy).AsSpan().SequenceEqual(File.ReadAllBytes(original)), Is.True, "byte-identical");
    }

    [Test]
    public void CallbackWritingTheWrongSizeFailsAndLeavesNoFile()
    {
        using var dir = new TempDirectory();
        var w = new GgufWriter();
        w.AddTensor("t", GgmlType.F32, [4], s => s.Write(new byte[15]));
        string path = dir.File("bad.gguf");
        var e = Assert.Throws<InvalidOperationException>(() => w.WriteFile(path))!;
        Assert.That(e.Message, Does.Contain("'t'").And.Contain("15 bytes instead of 16"));
        Assert.That(Directory.GetFileSystemEntries(dir.Path), Is.Empty, "neither the file nor its temporary");
    }

    [Test]
    public void WriteToNeedsNoSeekableStream()
    {
        var w = new GgufWriter();
        w.Set("k", GgufValue.Of(1u));
        w.AddTensor("t", GgmlType.F32, [2], new byte[8]);
        using var ms = new MemoryStream();
        using (var forwardOnly = new ForwardOnlyStream(ms)) w.WriteTo(forwardOnly);
        // header 24 + key (8+1+4+4) + info (8+1+4+8+4+8) = 74, padded to 96, + 8 data padded to 32.
        Assert.That(ms.Length, Is.EqualTo(96 + 32));
    }

    private sealed class ForwardOnlyStream(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    }

    [Test]
    public void SettingAKeyAgainReplacesItInPlace()
    {
        var w = new GgufWriter();
        w.Set("a", GgufValue.Of(1));
        w.Set("b", GgufValue.Of(2));
        w.Set("a", GgufValue.Of("x"));
        Assert.That(w.Metadata.Select(kv => kv.Key), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(w.Metadata[0].Value.Value, Is.EqualTo("x"));
        Assert.That(w.Remove("b"), Is.True);
        Assert.That(w.Remove("b"), Is.False);
    }

    [Test]
    public void CallerMistakesAreRefusedWhereTheyAreMade()
    {
        var w = new GgufWriter();
        w.AddTensor("t", GgmlType.F32, [4], new byte[16]);
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgmlType.F32, [4], new byte[16]), "duplicate name");
        Assert.Throws<ArgumentException>(() => w.AddTensor(new string('x', 64), GgmlType.F32, [4], new byte[16]), "name too long");
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.F32, [4], new byte[15]), "wrong data length");
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.F32, [], new byte[0]), "no dims");
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.F32, [1, 1, 1, 1, 1], new byte[4]), "5 dims");
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.F32, [0], new byte[0]), "zero extent");
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", GgmlType.Q8_0, [16], new byte[17]), "partial block");
        Assert.Throws<ArgumentException>(() => w.AddTensor("u", (GgmlType)4, [4], new byte[16]), "unknown type");
        Assert.Throws<ArgumentException>(() => w.Set("general.alignment", GgufValue.Of(48u)), "not a power of two");
        Assert.Throws<ArgumentException>(() => w.Set("general.alignment", GgufValue.Of(0u)), "zero");
        Assert.Throws<ArgumentException>(() => w.Set("general.alignment", GgufValue.Of(64)), "int32, not uint32");
        Assert.Throws<ArgumentException>(() => GgufValue.Of(new[] { GgufValue.Of(1) }), "array of arrays holding a scalar");
        Assert.That(w.TensorCount, Is.EqualTo(1));
        Assert.That(w.Alignment, Is.EqualTo(32));
    }

    [Test]
    public void CopyingFromAClosedFileFailsInsteadOfReadingFreedMemory()
    {
        using var dir = new TempDirectory();
        var w = new GgufWriter();
        var src = GgufFile.Open(SharedData.Model("tinystories-656k-q8_0.gguf"));
        w.AddTensor(src, src.Tensors[0]);
        src.Dispose();
        Assert.Throws<ObjectDisposedException>(() => w.WriteFile(dir.File("x.gguf")));
    }

    [Test]
    public void ValuesAreCopiedWhenMade()
    {
        var arr = new[] { 1, 2 };
        var v = GgufValue.Of(arr);
        arr[0] = 99;
        Assert.That(v.Value, Is.EqualTo(new[] { 1, 2 }));
    }
}
