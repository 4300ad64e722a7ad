using System.Text.Json;
using NUnit.Framework;
using Tessera.Formats;
using Tessera.Formats.SafeTensors;

namespace Tessera.Tests.Formats;

[TestFixture]
public class SafeTensorsCheckpointTests
{
    private static string TinyStoriesFolder => SharedData.Path("models", "tinystories-656k");

    [Test]
    public void OpensTheTinyStoriesFolderAndResolvesTheTiedEmbedding()
    {
        using var c = SafeTensorsCheckpoint.Open(TinyStoriesFolder);
        Assert.That(c.Path, Does.EndWith("model.safetensors"));
        Assert.That(c.Files, Has.Count.EqualTo(1));
        Assert.That(c.TensorCount, Is.EqualTo(20));
        Assert.That(c.Metadata["format"], Is.EqualTo("pt"));
        Assert.That(c.Aliases, Is.EqualTo(new Dictionary<string, string> { ["model.embed_tokens.weight"] = "lm_head.weight" }));
        Assert.That(c.GetTensor("model.embed_tokens.weight"), Is.SameAs(c.GetTensor("lm_head.weight")));
        Assert.That(c.Contains("model.embed_tokens.weight"), Is.True);
        Assert.That(c.Contains("format"), Is.False, "metadata that names no tensor is not an alias");
        Assert.That(c.FindTensor("pt"), Is.Null);
        var e = Assert.Throws<ModelFormatException>(() => c.GetTensor("model.layers.9.mlp.up_proj.weight"))!;
        Assert.That(e.Message, Does.Contain("model.safetensors").And.Contain("tensor 'model.layers.9.mlp.up_proj.weight' is missing"));
    }

    [Test]
    public void OpensAFileDirectly()
    {
        using var c = SafeTensorsCheckpoint.Open(Path.Combine(TinyStoriesFolder, "model.safetensors"));
        Assert.That(c.TensorCount, Is.EqualTo(20));
    }

    [Test]
    public void AliasChainsResolve()
    {
        using var dir = new TempDirectory();
        dir.Write("model.safetensors", new SafeTensorsBuilder()
            .Add("c", "F32", [1], new byte[4])
            .Meta("a", "b").Meta("b", "c").Meta("d", "nothing")
            .Build());
        using var ck = SafeTensorsCheckpoint.Open(dir.Path);
        Assert.That(ck.GetTensor("a"), Is.SameAs(ck.GetTensor("c")));
        Assert.That(ck.GetTensor("b"), Is.SameAs(ck.GetTensor("c")));
        Assert.That(ck.Contains("d"), Is.False);
    }

    /// <summary>Splits the TinyStories file into two shards with an index, as save_pretrained does for big models.</summary>
    private static void WriteShardedTinyStories(TempDirectory dir, Action<Dictionary<string, string>>? editMap = null)
    {
        using var src = SafeTensorsFile.Open(Path.Combine(TinyStoriesFolder, "model.safetensors"));
        var shards = new[] { new SafeTensorsBuilder(), new SafeTensorsBuilder() };
        var names = new[] { "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" };
        var map = new Dictionary<string, string>();
        foreach (var t in src.Tensors)
        {
            int s = t.Name.Contains("layers.1.") || t.Name == "model.norm.weight" ? 1 : 0;
            shards[s].Add(t.Name, t.DType.ToString(), [.. t.Shape], t.Span.ToArray());
            map[t.Name] = names[s];
        }
        foreach (var (k, v) in src.Metadata) shards[0].Meta(k, v);
        for (int i = 0; i < 2; i++) dir.Write(names[i], shards[i].Build());
        editMap?.Invoke(map);
        string index = JsonSerializerText(map);
        File.WriteAllText(dir.File("model.safetensors.index.json"), index);
    }

    private static string JsonSerializerText(Dictionary<string, string> map)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", 2_624_000);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (var (k, v) in map) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    [Test]
    public void ShardedCheckpointLooksUpAcrossShards()
    {
        using var dir = new TempDirectory();
        WriteShardedTinyStories(dir);
        using var original = SafeTensorsFile.Open(Path.Combine(TinyStoriesFolder, "model.safetensors"));
        using var c = SafeTensorsCheckpoint.Open(dir.Path);
        Assert.That(c.Path, Does.EndWith("model.safetensors.index.json"));
        Assert.That(c.Files, Has.Count.EqualTo(2));
        Assert.That(c.TensorCount, Is.EqualTo(original.Tensors.Count));
        foreach (var t in original.Tensors)
        {
            var got = c.GetTensor(t.Name);
            Assert.That(got.Shape, Is.EqualTo(t.Shape), t.Name);
            Assert.That(got.Span.SequenceEqual(t.Span), Is.True, t.Name);
        }
        Assert.That(c.GetTensor("model.norm.weight").FilePath, Does.EndWith("model-00002-of-00002.safetensors"));
        Assert.That(c.GetTensor("model.embed_tokens.weight"), Is.SameAs(c.GetTensor("lm_head.weight")));
    }

    private static void AssertRefused(string path, params string[] phrases)
    {
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsCheckpoint.Open(path).Dispose())!;
        foreach (string p in phrases) Assert.That(e.Message, Does.Contain(p));
    }

    [Test]
    public void MissingShard()
    {
        using var dir = new TempDirectory();
        WriteShardedTinyStories(dir);
        File.Delete(dir.File("model-00002-of-00002.safetensors"));
        AssertRefused(dir.Path, dir.File("model.safetensors.index.json") + ": ", "shard 'model-00002-of-00002.safetensors'", "is missing");
    }

    [Test]
    public void TensorNotInTheShardTheIndexNames()
    {
        using var dir = new TempDirectory();
        WriteShardedTinyStories(dir, map => map["model.norm.weight"] = "model-00001-of-00002.safetensors");
        AssertRefused(dir.Path, "tensor 'model.norm.weight'", "shard 'model-00001-of-00002.safetensors'", "does not have it");
    }

    [TestCase("../model-00001-of-00002.safetensors")]
    [TestCase("/etc/passwd")]
    [TestCase("")]
    public void ShardOutsideTheFolder(string shard)
    {
        using var dir = new TempDirectory();
        WriteShardedTinyStories(dir, map => map["model.norm.weight"] = shard);
        AssertRefused(dir.Path, "tensor 'model.norm.weight'", "not a file name in the index's folder");
    }

    [TestCase("{\"weight_map\": [1]}", "has no weight_map object")]
    [TestCase("{}", "has no weight_map object")]
    [TestCase("{\"weight_map\": {\"a\": 3}}", "weight_map entry for tensor 'a' is a JSON Number")]
    [TestCase("{\"weight_map\": ", "not valid JSON")]
    public void BadIndex(string json, string phrase)
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("model.safetensors.index.json"), json);
        AssertRefused(dir.Path, dir.File("model.safetensors.index.json") + ": ", phrase);
    }

    [Test]
    public void BadShardIsReportedByItsOwnName()
    {
        using var dir = new TempDirectory();
        WriteShardedTinyStories(dir);
        string shard = dir.File("model-00002-of-00002.safetensors");
        byte[] b = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, b[..^4]);
        AssertRefused(dir.Path, shard + ": ", "outside the data section");
    }

    [Test]
    public void FolderWithoutWeights()
    {
        using var dir = new TempDirectory();
        AssertRefused(dir.Path, "neither model.safetensors nor model.safetensors.index.json");
    }
}
