using System.Buffers.Binary;
using System.Runtime.InteropServices;
using NUnit.Framework;
using Tessera.Formats;
using Tessera.Formats.Gguf;
using Tessera.Formats.SafeTensors;
using Tessera.Quantization;

namespace Tessera.Tests.Formats;

[TestFixture]
public class SafeTensorsFileTests
{
    private static string TinyStories => SharedData.Path("models", "tinystories-656k", "model.safetensors");

    [Test]
    public void OpensTheTinyStoriesFile()
    {
        using var f = SafeTensorsFile.Open(TinyStories);
        Assert.That(f.Tensors, Has.Count.EqualTo(20), "2 layers x 9 + final norm + lm_head");
        Assert.That(f.Metadata, Is.EqualTo(new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["model.embed_tokens.weight"] = "lm_head.weight",
        }));
        var head = f.GetTensor("lm_head.weight");
        Assert.That(head.DType, Is.EqualTo(SafeTensorsDType.F32));
        Assert.That(head.Shape, Is.EqualTo(new long[] { 2048, 128 }));
        Assert.That(head.GgmlDimensions, Is.EqualTo(new long[] { 128, 2048 }));
        Assert.That(head.ByteSize, Is.EqualTo(2048 * 128 * 4));
        Assert.That(head.DataOffset, Is.EqualTo(f.DataSectionOffset));
        Assert.That(head.ComputeType, Is.EqualTo(GgmlType.F32));
        Assert.That(f.GetTensor("model.layers.1.self_attn.k_proj.weight").ShapeText, Is.EqualTo("[64, 128]"));
        Assert.That(f.FindTensor("model.embed_tokens.weight"), Is.Null, "stored only as an alias");
        Assert.That(f.Tensors.Sum(t => t.ByteSize), Is.EqualTo(f.FileLength - f.DataSectionOffset));
    }

    [Test]
    public void DataMatchesTheGgufConversion()
    {
        // The GGUF files keep the norms in F32, so they are bit-for-bit the safetensors values.
        using var st = SafeTensorsFile.Open(TinyStories);
        using var gg = GgufFile.Open(SharedData.Model("tinystories-656k-q8_0.gguf"));
        Assert.That(st.GetTensor("model.layers.0.input_layernorm.weight").Span.SequenceEqual(gg.GetTensor("blk.0.attn_norm.weight").Span), Is.True);
        Assert.That(st.GetTensor("model.norm.weight").Span.SequenceEqual(gg.GetTensor("output_norm.weight").Span), Is.True);
    }

    [Test]
    public void ParsesEveryDTypeAndScalarsAndEmptyTensors()
    {
        using var dir = new TempDirectory();
        var b = new SafeTensorsBuilder();
        foreach (var dt in Enum.GetValues<SafeTensorsDType>())
            b.Add("t." + dt, dt.ToString(), [2, 3], new byte[6 * SafeTensorsDTypeInfo.ElementBytes(dt)]);
        b.Add("scalar", "F32", [], new byte[4]);
        b.Add("empty", "BF16", [0, 5], []);
        using var f = SafeTensorsFile.Open(dir.Write("all.safetensors", b.Build()));
        Assert.That(f.Tensors, Has.Count.EqualTo(Enum.GetValues<SafeTensorsDType>().Length + 2));
        Assert.That(f.GetTensor("scalar").ElementCount, Is.EqualTo(1));
        Assert.That(f.GetTensor("empty").ByteSize, Is.Zero);
        Assert.That(f.Metadata, Is.Empty);
    }

    [Test]
    public void NonComputeDTypesParseButAreRefusedWhenUsed()
    {
        using var dir = new TempDirectory();
        string path = dir.Write("i64.safetensors", new SafeTensorsBuilder().Add("ids", "I64", [4], new byte[32]).Build());
        using var f = SafeTensorsFile.Open(path);
        var t = f.GetTensor("ids");
        Assert.That(t.IsComputeType, Is.False);
        var e = Assert.Throws<ModelFormatException>(() => _ = t.ComputeType)!;
        Assert.That(e.Message, Does.StartWith(path).And.Contain("tensor 'ids' has dtype I64").And.Contain("not support"));
    }

    [Test]
    public void HalfAndBFloatMapToGgmlTypes()
    {
        Assert.That(SafeTensorsDTypeInfo.ToGgmlType(SafeTensorsDType.F16), Is.EqualTo(GgmlType.F16));
        Assert.That(SafeTensorsDTypeInfo.ToGgmlType(SafeTensorsDType.BF16), Is.EqualTo(GgmlType.BF16));
        Assert.That(SafeTensorsDTypeInfo.ToGgmlType(SafeTensorsDType.U8), Is.Null);
    }

    // ---- bad input: every case a ModelFormatException naming the file and the problem ----

    private static void AssertRefused(string path, params string[] phrases)
    {
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.StartWith(path + ": "));
        foreach (string p in phrases) Assert.That(e.Message, Does.Contain(p));
    }

    private static byte[] Good() => new SafeTensorsBuilder()
        .Add("a", "F32", [2, 2], MemoryMarshal.AsBytes<float>([1, 2, 3, 4]).ToArray())
        .Add("b", "F16", [3], new byte[6])
        .Meta("format", "pt")
        .Build();

    [Test]
    public void SmallGoodFileOpens()
    {
        using var dir = new TempDirectory();
        using var f = SafeTensorsFile.Open(dir.Write("ok.safetensors", Good()));
        Assert.That(MemoryMarshal.Cast<byte, float>(f.GetTensor("a").Span).ToArray(), Is.EqualTo(new float[] { 1, 2, 3, 4 }));
    }

    [Test]
    public void TruncatedHeaderLength([Values(1, 7)] int length)
    {
        using var dir = new TempDirectory();
        AssertRefused(dir.Write("t.safetensors", Good()[..length]), "truncated", "8-byte header length");
    }

    [Test]
    public void TruncatedInsideTheHeader([Values(8, 9, 40)] int length)
    {
        using var dir = new TempDirectory();
        AssertRefused(dir.Write("t.safetensors", Good()[..length]), "header length", "runs past the end of the file");
    }

    [Test]
    public void TruncatedInsideTheData([Values(1, 10)] int fromEnd)
    {
        using var dir = new TempDirectory();
        byte[] good = Good();
        AssertRefused(dir.Write("t.safetensors", good[..^fromEnd]), "tensor '", "outside the data section");
    }

    [Test]
    public void TruncatedCopyOfTheSharedFile()
    {
        using var dir = new TempDirectory();
        byte[] b = File.ReadAllBytes(TinyStories);
        AssertRefused(dir.Write("h.safetensors", b[..1000]), "runs past the end of the file");
        AssertRefused(dir.Write("d.safetensors", b[..^100]), "tensor 'model.norm.weight'", "outside the data section");
    }

    [Test]
    public void HeaderLengthHuge()
    {
        using var dir = new TempDirectory();
        byte[] b = Good();
        BinaryPrimitives.WriteUInt64LittleEndian(b, ulong.MaxValue);
        AssertRefused(dir.Write("h.safetensors", b), $"header length {ulong.MaxValue}", "runs past the end of the file");
    }

    [TestCase("{\"a\": {\"dtype\": \"F32\"", "not valid JSON")]
    [TestCase("not json at all", "not valid JSON")]
    [TestCase("[1, 2]", "header is a JSON Array, not an object")]
    [TestCase("{\"a\": 5}", "tensor 'a' entry is a JSON Number")]
    [TestCase("{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", "tensor 'a' has no dtype")]
    [TestCase("{\"a\": {\"dtype\": \"Q4\", \"shape\": [1], \"data_offsets\": [0, 4]}}", "tensor 'a' has unknown dtype 'Q4'")]
    [TestCase("{\"a\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", "tensor 'a' has unknown dtype 'f32'")]
    [TestCase("{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", "tensor 'a' has no shape")]
    [TestCase("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", "tensor 'a' shape axis 0 is -1")]
    [TestCase("{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", "tensor 'a' shape axis 0 is 1.5")]
    [TestCase("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", "tensor 'a' data_offsets is not a pair")]
    [TestCase("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", "tensor 'a' data_offsets [4, 0] lie outside")]
    [TestCase("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [16, 20]}}", "tensor 'a' data_offsets [16, 20] lie outside the data section (16 bytes)")]
    [TestCase("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 16]}}", "tensor 'a' data_offsets [0, 16] hold 16 bytes, but dtype F32 and shape [3] need 12")]
    [TestCase("{\"a\": {\"dtype\": \"F16\", \"shape\": [2, 4], \"data_offsets\": [0, 8]}}", "need 16")]
    [TestCase("{\"a\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 16]}}", "need more than the file holds")]
    [TestCase("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", "tensor 'b' data (bytes 4 to 12) overlaps tensor 'a'")]
    [TestCase("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", "header names 'a' twice")]
    [TestCase("{\"__metadata__\": {\"n\": 5}}", "__metadata__ entry 'n' is a JSON Number")]
    [TestCase("{\"__metadata__\": [\"x\"]}", "__metadata__ is a JSON Array")]
    public void BadHeader(string header, string phrase)
    {
        using var dir = new TempDirectory();
        AssertRefused(dir.Write("bad.safetensors", SafeTensorsBuilder.Build(header, new byte[16])), phrase);
    }

    [Test]
    public void InvalidUtf8InTheHeader()
    {
        using var dir = new TempDirectory();
        byte[] b = SafeTensorsBuilder.Build("{\"a\u00e9\": {}}", []);
        int at = Array.IndexOf(b, (byte)0xC3);
        b[at] = 0xFF;
        AssertRefused(dir.Write("u.safetensors", b), "not valid JSON");
    }

    [Test]
    public void EmptyFileDirectoryAndMissingFile()
    {
        using var dir = new TempDirectory();
        AssertRefused(dir.Write("e.safetensors", []), "file is empty");
        AssertRefused(dir.Path, "is a directory");
        AssertRefused(dir.File("nope.safetensors"), "file not found");
    }
}
