using NUnit.Framework;
using Tessera.Formats;
using Tessera.Formats.HuggingFace;

namespace Tessera.Tests.Formats;

[TestFixture]
public class HfConfigTests
{
    [Test]
    public void ReadsTheTinyStoriesConfig()
    {
        string folder = SharedData.Path("models", "tinystories-656k");
        var c = HfConfig.Load(folder);
        Assert.That(c.Path, Is.EqualTo(Path.Combine(folder, "config.json")));
        Assert.That(c.Architectures, Is.EqualTo(new[] { "LlamaForCausalLM" }));
        Assert.That(c.ModelType, Is.EqualTo("llama"));
        Assert.That((c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers), Is.EqualTo((128, 384, 2)));
        Assert.That((c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.ResolvedHeadDim), Is.EqualTo((8, 4, (int?)null, 16)));
        Assert.That(c.RmsNormEps, Is.EqualTo(1e-6));
        Assert.That(c.RopeTheta, Is.EqualTo(10000.0));
        Assert.That(c.RopeScaling, Is.Null);
        Assert.That((c.MaxPositionEmbeddings, c.VocabSize, c.TieWordEmbeddings), Is.EqualTo((512, 2048, true)));
        Assert.That(c.BosTokenIds, Is.EqualTo(new[] { 1 }));
        Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 2 }));
        Assert.That(c.TorchDtype, Is.EqualTo("float32"));
        Assert.That(c.SlidingWindow, Is.Null);
        Assert.That((c.HiddenAct, c.AttentionBias, c.MlpBias), Is.EqualTo(("silu", false, false)));
        Assert.DoesNotThrow(() => c.CheckContextLength(100_000));
    }

    private const string Minimal = """
        {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
         "num_attention_heads": 4, "rms_norm_eps": 1e-5, "max_position_embeddings": 256, "vocab_size": 100}
        """;

    [Test]
    public void DefaultsAreTransformers()
    {
        var c = HfConfig.Parse(Minimal);
        Assert.That(c.NumKeyValueHeads, Is.EqualTo(4));
        Assert.That(c.RopeTheta, Is.EqualTo(10000.0));
        Assert.That(c.TieWordEmbeddings, Is.False);
        Assert.That(c.Architectures, Is.Empty);
        Assert.That(c.BosTokenIds, Is.Empty);
        Assert.That(c.TorchDtype, Is.Null);
    }

    [Test]
    public void ReadsALlama32StyleConfig()
    {
        // The fields of meta-llama/Llama-3.2-1B's config.json that matter here.
        var c = HfConfig.Parse("""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
             "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
             "head_dim": 64, "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "max_position_embeddings": 131072,
             "vocab_size": 128256, "tie_word_embeddings": true, "bos_token_id": 128000,
             "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16",
             "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"}}
            """);
        Assert.That(c.HeadDim, Is.EqualTo(64));
        Assert.That(c.RopeTheta, Is.EqualTo(500000.0));
        Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 128001, 128008, 128009 }));
        Assert.That(c.RopeScaling, Is.Not.Null);
        var s = c.RopeScaling!;
        Assert.That((s.Type, s.Factor, s.LowFreqFactor, s.HighFreqFactor, s.OriginalMaxPositionEmbeddings),
            Is.EqualTo(("llama3", (double?)32.0, (double?)1.0, (double?)4.0, (int?)8192)));
        Assert.That(s.RawJson, Does.Contain("\"rope_type\": \"llama3\""));
        Assert.That(c.TorchDtype, Is.EqualTo("bfloat16"));
    }

    [Test]
    public void ReadsOlderAndNewerRopeLayouts()
    {
        var linear = HfConfig.Parse(Minimal.Replace("\"vocab_size\"", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}, \"vocab_size\""));
        Assert.That(linear.RopeScaling!.Type, Is.EqualTo("linear"));
        Assert.That(linear.RopeScaling.Factor, Is.EqualTo(2.0));

        var v5 = HfConfig.Parse(Minimal.Replace("\"vocab_size\"", "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1e6}, \"dtype\": \"float16\", \"vocab_size\""));
        Assert.That(v5.RopeTheta, Is.EqualTo(1e6));
        Assert.That(v5.RopeScaling, Is.Null, "the default type is plain RoPE");
        Assert.That(v5.TorchDtype, Is.EqualTo("float16"));
    }

    [TestCase("hidden_size")]
    [TestCase("intermediate_size")]
    [TestCase("num_hidden_layers")]
    [TestCase("num_attention_heads")]
    [TestCase("rms_norm_eps")]
    [TestCase("max_position_embeddings")]
    [TestCase("vocab_size")]
    [TestCase("model_type")]
    public void MissingRequiredField(string field)
    {
        string json = System.Text.RegularExpressions.Regex.Replace(Minimal, $"\"{field}\": [^,}}]+,?", "");
        var e = Assert.Throws<ModelFormatException>(() => HfConfig.Parse(json, "/m/config.json"))!;
        Assert.That(e.Message, Is.EqualTo($"/m/config.json: field '{field}' is missing"));
    }

    [TestCase("\"hidden_size\": \"64\"", "field 'hidden_size' should be an integer but is string \"64\"")]
    [TestCase("\"hidden_size\": 64.5", "field 'hidden_size' should be an integer but is number 64.5")]
    [TestCase("\"hidden_size\": null", "field 'hidden_size' is null")]
    [TestCase("\"hidden_size\": 0", "field 'hidden_size' is 0, but must be positive")]
    [TestCase("\"rms_norm_eps\": \"1e-5\"", "field 'rms_norm_eps' should be a number")]
    [TestCase("\"tie_word_embeddings\": 1", "field 'tie_word_embeddings' should be a boolean")]
    [TestCase("\"architectures\": \"LlamaForCausalLM\"", "field 'architectures' should be a list of strings")]
    [TestCase("\"eos_token_id\": \"</s>\"", "field 'eos_token_id' should be an integer or a list of integers")]
    [TestCase("\"eos_token_id\": [1, \"x\"]", "field 'eos_token_id' should be an integer or a list of integers")]
    [TestCase("\"num_key_value_heads\": 3", "field 'num_key_value_heads' is 3, which does not divide num_attention_heads (4)")]
    [TestCase("\"num_attention_heads\": 3, \"num_key_value_heads\": 1", "field 'hidden_size' is 64, not a multiple of num_attention_heads (3)")]
    [TestCase("\"rope_scaling\": 2", "field 'rope_scaling' should be an object")]
    [TestCase("\"rope_scaling\": {\"factor\": 2}", "field 'rope_scaling.rope_type' is missing")]
    [TestCase("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": \"big\"}", "field 'rope_scaling.factor' should be a number")]
    [TestCase("\"sliding_window\": -1", "field 'sliding_window' is -1")]
    public void WrongTypesAndInconsistentValues(string replacement, string phrase)
    {
        // Later duplicates would be ambiguous, so the field is replaced where it is, or added in front.
        string key = replacement[..(replacement.IndexOf(':'))];
        string json = Minimal.Contains(key)
            ? System.Text.RegularExpressions.Regex.Replace(Minimal, $"{key}: [^,}}]+", replacement.Replace("$", "$$"))
            : Minimal.Replace("{\"model_type\"", "{" + replacement + ", \"model_type\"");
        var e = Assert.Throws<ModelFormatException>(() => HfConfig.Parse(json, "/m/config.json"))!;
        Assert.That(e.Message, Does.StartWith("/m/config.json: ").And.Contain(phrase));
    }

    [Test]
    public void IntegersWrittenAsFloatsAreAccepted() =>
        Assert.That(HfConfig.Parse(Minimal.Replace("\"hidden_size\": 64", "\"hidden_size\": 64.0")).HiddenSize, Is.EqualTo(64));

    [Test]
    public void NullOptionalFieldsAreAbsent()
    {
        var c = HfConfig.Parse(Minimal.Replace("{\"model_type\"", "{\"num_key_value_heads\": null, \"rope_scaling\": null, \"eos_token_id\": null, \"head_dim\": null, \"model_type\""));
        Assert.That((c.NumKeyValueHeads, c.RopeScaling, c.EosTokenIds.Count, c.HeadDim), Is.EqualTo((4, (HfRopeScaling?)null, 0, (int?)null)));
    }

    [Test]
    public void SlidingWindowSmallerThanTheContextIsRefusedWhenUsed()
    {
        var c = HfConfig.Parse(Minimal.Replace("{\"model_type\"", "{\"sliding_window\": 4096, \"model_type\""), "/m/config.json");
        Assert.That(c.SlidingWindow, Is.EqualTo(4096));
        Assert.DoesNotThrow(() => c.CheckContextLength(4096));
        var e = Assert.Throws<ModelFormatException>(() => c.CheckContextLength(8192))!;
        Assert.That(e.Message, Does.StartWith("/m/config.json: field 'sliding_window' is 4096, smaller than the context length 8192"));
    }

    [TestCase("{\"model_type\": ", "not valid JSON")]
    [TestCase("[1]", "is a JSON Array, not an object")]
    public void NotAConfig(string json, string phrase)
    {
        var e = Assert.Throws<ModelFormatException>(() => HfConfig.Parse(json, "/m/config.json"))!;
        Assert.That(e.Message, Does.StartWith("/m/config.json: ").And.Contain(phrase));
    }

    [Test]
    public void MissingFile()
    {
        using var dir = new TempDirectory();
        var e = Assert.Throws<ModelFormatException>(() => HfConfig.Load(dir.Path))!;
        Assert.That(e.Message, Is.EqualTo(Path.Combine(dir.Path, "config.json") + ": file not found"));
    }
}
