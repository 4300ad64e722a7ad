using NUnit.Framework;
using Tessera.Formats.Gguf;
using Tessera.Quantization;

namespace Tessera.Tests.Formats;

/// <summary>Every GGUF file in ../shared opens, and its tensor table accounts for the file exactly.</summary>
[TestFixture]
public class GgufSharedFilesTests
{
    private static IEnumerable<string> SharedGgufFiles() =>
        new[] { "models", "vocab" }
            .SelectMany(d => Directory.EnumerateFiles(SharedData.Path(d), "*.gguf"))
            .Select(p => Path.GetRelativePath(SharedData.Path(), p))
            .Order(StringComparer.Ordinal);

    /// <summary>Model caches (Hugging Face's among them) hand out symbolic links; the link's own size is not the file's.</summary>
    [Test]
    public void OpensThroughASymbolicLink()
    {
        string target = SharedData.Path("models/tinystories-656k-q8_0.gguf");
        string link = Path.Combine(Path.GetTempPath(), $"tessera-link-{Guid.NewGuid():N}.gguf");
        try
        {
            try { File.CreateSymbolicLink(link, target); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Assert.Ignore($"cannot create a symbolic link here: {e.Message}"); }
            using var viaLink = GgufFile.Open(link);
            using var direct = GgufFile.Open(target);
            Assert.That(viaLink.FileLength, Is.EqualTo(direct.FileLength).And.EqualTo(new FileInfo(target).Length));
            Assert.That(viaLink.Tensors.Count, Is.EqualTo(direct.Tensors.Count));
        }
        finally { File.Delete(link); }
    }

    [Test]
    public void ThereAreFilesToCheck() => Assert.That(SharedGgufFiles().Count(), Is.GreaterThanOrEqualTo(25));

    [TestCaseSource(nameof(SharedGgufFiles))]
    public void OpensAndTensorsAreConsistentWithTheFileLength(string relative)
    {
        using var f = GgufFile.Open(SharedData.Path(relative));
        Assert.That(f.Version, Is.EqualTo(3u));
        Assert.That(f.Metadata, Is.Not.Empty);
        if (f.Tensors.Count == 0)
        {
            // Vocab-only files end with the header: there is no data section.
            Assert.That(f.DataSectionOffset, Is.GreaterThanOrEqualTo(f.FileLength));
            return;
        }

        long expectedOffset = f.DataSectionOffset, sum = 0;
        foreach (var t in f.Tensors.OrderBy(t => t.DataOffset))
        {
            Assert.That(t.ByteSize, Is.EqualTo(GgmlTypeInfo.RowBytes(t.Type, t.RowLength) * t.RowCount), t.Name);
            Assert.That(t.DataOffset % f.Alignment, Is.Zero, t.Name);
            // llama.cpp packs tensors back to back, each padded to the alignment.
            Assert.That(t.DataOffset, Is.EqualTo(expectedOffset), t.Name);
            expectedOffset += (t.ByteSize + f.Alignment - 1) / f.Alignment * f.Alignment;
            sum += t.ByteSize;
        }
        Assert.That(expectedOffset, Is.EqualTo(f.FileLength), "the padded tensors end exactly at the end of the file");
        Assert.That(sum, Is.LessThanOrEqualTo(f.FileLength - f.DataSectionOffset));
        Assert.That(sum, Is.GreaterThan(f.FileLength - f.DataSectionOffset - (long)f.Tensors.Count * f.Alignment));
        Assert.That(f.Tensors.Select(t => t.Name).Distinct().Count(), Is.EqualTo(f.Tensors.Count));
    }
}
