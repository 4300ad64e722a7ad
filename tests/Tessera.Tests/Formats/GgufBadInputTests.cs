using NUnit.Framework;
using Tessera.Formats;
using Tessera.Formats.Gguf;
using Tessera.Quantization;

namespace Tessera.Tests.Formats;

/// <summary>
/// Each broken file must be refused with a <see cref="ModelFormatException"/> naming the file and the problem,
/// never an IndexOutOfRange, an access violation or a silently wrong tensor. Broken files are copies of a shared
/// file (or writer output) edited in a temp folder.
/// </summary>
[TestFixture]
public class GgufBadInputTests
{
    private const string Source = "tinystories-656k-q8_0.gguf";
    private TempDirectory _dir = null!;
    private byte[] _good = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = new TempDirectory();
        _good = File.ReadAllBytes(SharedData.Model(Source));
    }

    [TearDown]
    public void TearDown() => _dir.Dispose();

    private static void AssertRefused(string path, params string[] phrases)
    {
        var e = Assert.Throws<ModelFormatException>(() => GgufFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.StartWith(path + ": "));
        Assert.That(e.FilePath, Is.EqualTo(path));
        foreach (string p in phrases) Assert.That(e.Message, Does.Contain(p));
    }

    private string Edited(string name, Action<byte[]> edit)
    {
        byte[] copy = (byte[])_good.Clone();
        edit(copy);
        return _dir.Write(name, copy);
    }

    private long DataSectionOffset()
    {
        using var f = GgufFile.Open(SharedData.Model(Source));
        return f.DataSectionOffset;
    }

    [Test]
    public void TruncatedInsideTheHeader([Values(1, 4, 8, 23)] int length) =>
        AssertRefused(_dir.Write("t.gguf", _good[..length]), "truncated", "shorter than a GGUF header");

    [Test]
    public void TruncatedInsideTheMetadata([Values(1000, 5000, 20000)] int length) =>
        AssertRefused(_dir.Write("t.gguf", _good[..length]), "truncated", "metadata");

    [Test]
    public void TruncatedRightAfterTheHeader([Values(24, 30, 100)] int length) =>
        // Too short for even the declared tensor infos: refused before reading any key.
        AssertRefused(_dir.Write("t.gguf", _good[..length]), "truncated", "tensor count 20");

    [Test]
    public void TruncatedInsideTheTensorInfos([Values(40, 300)] int beforeData)
    {
        // The infos end less than one alignment (32) before the data section, and there are far more than 300
        // bytes of them, so these cuts fall inside them.
        int length = (int)DataSectionOffset() - beforeData;
        AssertRefused(_dir.Write("t.gguf", _good[..length]), "truncated", "tensor");
    }

    [Test]
    public void TruncatedInsideTheData([Values(0, 1, 1000, 100_000)] int fromEnd)
    {
        int length = fromEnd == 0 ? (int)DataSectionOffset() + 1 : _good.Length - fromEnd;
        AssertRefused(_dir.Write("t.gguf", _good[..length]), "extends past the end of the file", "truncated or corrupt");
    }

    [Test]
    public void WrongMagic()
    {
        AssertRefused(Edited("m.gguf", b => b[0] = (byte)'X'), "not a GGUF file", "'XGUF'");
        AssertRefused(_dir.Write("zeros.gguf", new byte[64]), "not a GGUF file", "0x00000000");
    }

    [Test]
    public void UnknownVersion([Values(1u, 4u, 0u)] uint version) =>
        AssertRefused(Edited("v.gguf", b => GgufBytes.PutU32(b, 4, version)), $"unsupported GGUF version {version}");

    [Test]
    public void TensorDataPastTheEndOfTheFile()
    {
        AssertRefused(Edited("o.gguf", b =>
        {
            int at = GgufBytes.TensorOffset(b, GgufBytes.TensorInfo(b, "output_norm.weight"));
            GgufBytes.PutU64(b, at, GgufBytes.GetU64(b, at) + (1 << 20));
        }), "tensor 'output_norm.weight'", "extends past the end of the file");
        // An offset so large that adding it to the data section start would overflow.
        AssertRefused(Edited("o2.gguf", b =>
            GgufBytes.PutU64(b, GgufBytes.TensorOffset(b, GgufBytes.TensorInfo(b, "output_norm.weight")), ulong.MaxValue - 31)),
            "tensor 'output_norm.weight'", "extends past the end of the file");
    }

    [Test]
    public void TensorOffsetNotAligned() =>
        AssertRefused(Edited("a.gguf", b =>
        {
            int at = GgufBytes.TensorOffset(b, GgufBytes.TensorInfo(b, "output_norm.weight"));
            GgufBytes.PutU64(b, at, GgufBytes.GetU64(b, at) + 4);
        }), "tensor 'output_norm.weight'", "not aligned to 32 bytes");

    [Test]
    public void TensorsSharingBytes() =>
        AssertRefused(Edited("s.gguf", b =>
        {
            // Point the second tensor at the first one's data.
            using var f = GgufFile.Open(SharedData.Model(Source));
            var (first, second) = (f.Tensors[0], f.Tensors[1]);
            GgufBytes.PutU64(b, GgufBytes.TensorOffset(b, GgufBytes.TensorInfo(b, second.Name)),
                (ulong)(first.DataOffset - f.DataSectionOffset));
        }), "overlaps");

    [Test]
    public void UnknownTensorType([Values(4u, 99u, uint.MaxValue)] uint type) =>
        AssertRefused(Edited("ty.gguf", b =>
            GgufBytes.PutU32(b, GgufBytes.TensorType(b, GgufBytes.TensorInfo(b, "output_norm.weight")), type)),
            "tensor 'output_norm.weight'", $"unknown type id {type}");

    [Test]
    public void ZeroDimensions() =>
        AssertRefused(Edited("d0.gguf", b => GgufBytes.PutU32(b, GgufBytes.TensorInfo(b, "output_norm.weight"), 0)),
            "tensor 'output_norm.weight' has 0 dimensions");

    [Test]
    public void TooManyDimensions() =>
        AssertRefused(Edited("d5.gguf", b => GgufBytes.PutU32(b, GgufBytes.TensorInfo(b, "output_norm.weight"), 5)),
            "tensor 'output_norm.weight' has 5 dimensions");

    [Test]
    public void ZeroOrNegativeExtent([Values(0UL, ulong.MaxValue, 1UL << 63)] ulong extent) =>
        AssertRefused(Edited("e.gguf", b => GgufBytes.PutU64(b, GgufBytes.TensorInfo(b, "output_norm.weight") + 4, extent)),
            "tensor 'output_norm.weight'", $"invalid extent {extent} on axis 0");

    [Test]
    public void ShapeWhoseSizeOverflows() =>
        // 2^40 x 2^40 elements: each axis is in range but the product overflows 64 bits.
        AssertRefused(Edited("ov.gguf", b =>
        {
            int info = GgufBytes.TensorInfo(b, "token_embd.weight");
            GgufBytes.PutU64(b, info + 4, 1UL << 40);
            GgufBytes.PutU64(b, info + 12, 1UL << 40);
        }), "tensor 'token_embd.weight'", "larger than the whole file");

    [Test]
    public void ShapeWhoseByteSizeWrapsToZero() =>
        // F64 of 2^40 x 2^21 elements is 2^64 bytes: a 64-bit byte count wraps to 0 and would pass a bounds check.
        AssertRefused(Edited("wrap.gguf", b =>
        {
            int info = GgufBytes.TensorInfo(b, "token_embd.weight");
            GgufBytes.PutU64(b, info + 4, 1UL << 40);
            GgufBytes.PutU64(b, info + 12, 1UL << 21);
            GgufBytes.PutU32(b, GgufBytes.TensorType(b, info), (uint)GgmlType.F64);
        }), "tensor 'token_embd.weight' of type F64", "larger than the whole file");

    [Test]
    public void RowNotAMultipleOfTheBlockSize() =>
        AssertRefused(Edited("bs.gguf", b => GgufBytes.PutU64(b, GgufBytes.TensorInfo(b, "token_embd.weight") + 4, 100)),
            "tensor 'token_embd.weight'", "not a multiple of the block size 32");

    [Test]
    public void StringLongerThanTheFile([Values(1UL << 40, ulong.MaxValue)] ulong length)
    {
        // The first key's length is the 8 bytes right after the 24-byte header.
        AssertRefused(Edited("s.gguf", b => GgufBytes.PutU64(b, 24, length)), "metadata entry 0", $"declares a string of {length} bytes");
        AssertRefused(Edited("s2.gguf", b => GgufBytes.PutU64(b, GgufBytes.TensorInfo(b, "output_norm.weight") - 8 - "output_norm.weight".Length, length)),
            "tensor info", $"declares a string of {length} bytes");
    }

    [Test]
    public void ArrayCountOverflow([Values(ulong.MaxValue, 1UL << 61, 1UL << 32)] ulong count) =>
        // tokenizer.ggml.tokens: type (4 bytes, ARRAY), element type (4 bytes, STRING), then the count.
        AssertRefused(Edited("ac.gguf", b => GgufBytes.PutU64(b, GgufBytes.AfterString(b, "tokenizer.ggml.tokens") + 8, count)),
            "metadata key 'tokenizer.ggml.tokens' array count", "cannot fit");

    [Test]
    public void TensorAndKeyCountOverflow()
    {
        AssertRefused(Edited("tc.gguf", b => GgufBytes.PutU64(b, 8, ulong.MaxValue)), "tensor count", "cannot fit");
        AssertRefused(Edited("kc.gguf", b => GgufBytes.PutU64(b, 16, 1UL << 62)), "metadata key count", "cannot fit");
    }

    [Test]
    public void UnknownMetadataValueType() =>
        AssertRefused(Edited("vt.gguf", b => GgufBytes.PutU32(b, GgufBytes.AfterString(b, "general.architecture"), 13)),
            "metadata key 'general.architecture' has unknown value type 13");

    [Test]
    public void BooleanByteNeitherZeroNorOne()
    {
        var w = new GgufWriter();
        w.Set("flag", GgufValue.Of(true));
        using var ms = new MemoryStream();
        w.WriteTo(ms);
        byte[] b = ms.ToArray();
        b[GgufBytes.AfterString(b, "flag") + 4] = 2;
        AssertRefused(_dir.Write("b.gguf", b), "metadata key 'flag'", "boolean byte 2");
    }

    [Test]
    public void AlignmentNotAPowerOfTwo([Values(0u, 3u, 48u, 0x80000000u)] uint alignment)
    {
        var w = new GgufWriter();
        w.Set("general.alignment", GgufValue.Of(64u));
        w.AddTensor("t", GgmlType.F32, [4], new byte[16]);
        using var ms = new MemoryStream();
        w.WriteTo(ms);
        byte[] b = ms.ToArray();
        GgufBytes.PutU32(b, GgufBytes.AfterString(b, "general.alignment") + 4, alignment);
        AssertRefused(_dir.Write("al.gguf", b), "general.alignment is " + alignment);
    }

    [Test]
    public void EmptyFile() => AssertRefused(_dir.Write("empty.gguf", []), "file is empty");

    [Test]
    public void Directory() => AssertRefused(_dir.Path, "is a directory");

    [Test]
    public void FileNotFound() => AssertRefused(_dir.File("nope.gguf"), "file not found");

    [Test]
    public void UnmodifiedCopyOpens()
    {
        // The control for all of the above: the edits, not the copying, are what break the files.
        using var f = GgufFile.Open(_dir.Write("ok.gguf", _good));
        Assert.That(f.Tensors, Is.Not.Empty);
    }
}
