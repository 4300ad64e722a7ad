using System.Text.Json;
using NUnit.Framework;

namespace Tessera.Tests.Cli;

public class CliTests
{
    private const string Model = "tinystories-656k-q8_0.gguf";

    private static void AssertCleanError(CliRunner.Result r, params string[] phrases)
    {
        Assert.That(r.ExitCode, Is.EqualTo(1), $"exit code; stderr: {r.Err}");
        Assert.That(r.Err, Does.StartWith("error: "));
        foreach (var p in phrases) Assert.That(r.Err, Does.Contain(p));
        Assert.That(r.Err, Does.Not.Contain("   at "), "stack trace printed");
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
    }

    [Test]
    public void GenerateJsonGreedyMatchesLlamaCpp()
    {
        var g = Golden.GoldenCase.Load("tinystories-656k-q8_0", 0);
        var r = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", g.Prompt, "-n", "12", "--temp", "0", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var prompt = doc.RootElement.GetProperty("prompt_tokens").EnumerateArray().Select(e => e.GetInt32());
        var tokens = doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.That(prompt, Is.EqualTo(g.PromptTokens));
        Assert.That(tokens, Is.EqualTo(g.GreedyTokens.Take(12)));
        Assert.That(doc.RootElement.GetProperty("text").GetString(), Does.StartWith(", a little girl named Lily"));
    }

    [Test]
    public void GenerateChoicesAreTheSeededRunsWithThePromptComputedOnce()
    {
        const string prompt = "Once upon a time";
        var many = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "-n", "16", "--seed", "4", "--choices", "3", "--json", "--ignore-eos");
        Assert.That(many.ExitCode, Is.EqualTo(0), many.Err);
        using var doc = JsonDocument.Parse(many.Out);
        var choices = doc.RootElement.GetProperty("choices").EnumerateArray().ToArray();
        Assert.That(choices, Has.Length.EqualTo(3));
        Assert.That(doc.RootElement.GetProperty("prompt_tokens_computed").GetInt32(), Is.EqualTo(doc.RootElement.GetProperty("prompt_tokens").GetArrayLength()));
        for (int i = 0; i < 3; i++)
        {
            var one = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "-n", "16", "--seed", (4 + i).ToString(), "--json", "--ignore-eos");
            using var single = JsonDocument.Parse(one.Out);
            Assert.That(choices[i].GetProperty("tokens").ToString(), Is.EqualTo(single.RootElement.GetProperty("tokens").ToString()), $"choice {i} is the run with seed {4 + i}");
        }
        var text = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "-n", "8", "--choices", "2");
        Assert.That(text.Out, Does.Contain("--- choice 0 ---").And.Contain("--- choice 1 ---"));
        var bad = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "--choices", "17");
        Assert.That(bad.ExitCode, Is.Not.EqualTo(0));
        Assert.That(bad.Err, Does.Contain("--choices 17: must be 1 to 16"));
    }

    [Test]
    public void GenerateSpeculateLookupGivesThePlainTokensAndReportsCounts()
    {
        string prompt = "Tom had a red ball. Tom had a red ball. Tom had a red";
        var plain = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "-n", "40", "--temp", "0", "--json");
        var spec = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "-n", "40", "--temp", "0", "--json", "--speculate", "lookup", "--draft-max", "6", "--draft-fixed");
        Assert.That(plain.ExitCode, Is.EqualTo(0), plain.Err);
        Assert.That(spec.ExitCode, Is.EqualTo(0), spec.Err);
        using var a = JsonDocument.Parse(plain.Out);
        using var b = JsonDocument.Parse(spec.Out);
        Assert.That(b.RootElement.GetProperty("tokens").ToString(), Is.EqualTo(a.RootElement.GetProperty("tokens").ToString()));
        Assert.That(a.RootElement.TryGetProperty("speculation", out _), Is.False);
        var s = b.RootElement.GetProperty("speculation");
        Assert.That(s.GetProperty("method").GetString(), Is.EqualTo("lookup"));
        Assert.That(s.GetProperty("drafted_tokens").GetInt32(), Is.GreaterThan(0));
        Assert.That(s.GetProperty("accepted_tokens").GetInt32(), Is.GreaterThan(0));
        Assert.That(s.GetProperty("tokens_per_step").GetDouble(), Is.GreaterThan(1.0));
        Assert.That(s.GetProperty("verify_steps").GetInt32(), Is.LessThan(40));
    }

    [Test]
    public void GenerateSpeculateRecycleGivesThePlainTokens()
    {
        string prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
        var plain = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "-n", "60", "--temp", "0", "--json", "--ignore-eos");
        var spec = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "-n", "60", "--temp", "0", "--json", "--ignore-eos", "--speculate", "recycle", "--draft-fixed");
        Assert.That(spec.ExitCode, Is.EqualTo(0), spec.Err);
        using var a = JsonDocument.Parse(plain.Out);
        using var b = JsonDocument.Parse(spec.Out);
        Assert.That(b.RootElement.GetProperty("tokens").ToString(), Is.EqualTo(a.RootElement.GetProperty("tokens").ToString()));
        Assert.That(a.RootElement.GetProperty("tokens").GetArrayLength(), Is.EqualTo(60), "--ignore-eos runs to -n");
        var s = b.RootElement.GetProperty("speculation");
        Assert.That(s.GetProperty("method").GetString(), Is.EqualTo("recycle"));
        int vocab = Tessera.Tests.Golden.ModelCache.Get(Model).Config.VocabSize;
        Assert.That(s.GetProperty("proposer_bytes").GetInt64(), Is.EqualTo(vocab * 8 * 4), "a vocab x 8 successor table of ints");
        Assert.That(s.GetProperty("accepted_tokens").GetInt32(), Is.GreaterThan(0));
    }

    [Test]
    public void GenerateRefusesBadDraftModels()
    {
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once", "-n", "4", "--speculate", "draft"), "--draft-model");
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once", "-n", "4", "--speculate", "lookup", "--draft-model", SharedData.Model(Model)), "--speculate draft");
        string notModel = Path.Combine(AppContext.BaseDirectory, "Data", "story.txt");
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once", "-n", "4", "--draft-model", notModel), "story.txt");
        string vocabOnly = SharedData.Path("vocab", "ggml-vocab-llama-spm.gguf");
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once", "-n", "4", "--draft-model", vocabOnly), "ggml-vocab-llama-spm.gguf");
    }

    [Test]
    public void GenerateWithADraftModelGivesThePlainTokens()
    {
        string prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
        var plain = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "-n", "40", "--temp", "0", "--json", "--ignore-eos");
        var spec = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", prompt, "-n", "40", "--temp", "0", "--json", "--ignore-eos", "-md", SharedData.Model("tinystories-656k-q4_0.gguf"));
        Assert.That(spec.ExitCode, Is.EqualTo(0), spec.Err);
        using var a = JsonDocument.Parse(plain.Out);
        using var b = JsonDocument.Parse(spec.Out);
        Assert.That(b.RootElement.GetProperty("tokens").ToString(), Is.EqualTo(a.RootElement.GetProperty("tokens").ToString()));
        Assert.That(b.RootElement.GetProperty("speculation").GetProperty("method").GetString(), Is.EqualTo("draft"));
    }

    [TestCase("--draft-max", "0", "--draft-max 0")]
    [TestCase("--draft-max", "128", "--draft-max 128")]
    [TestCase("--speculate", "medusa", "--speculate medusa")]
    [TestCase("--tree", "dynamic", "--tree is for --speculate draft or self")]
    public void GenerateRefusesBadSpeculationOptions(string option, string value, string phrase)
    {
        var r = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once", "-n", "4", option, value);
        AssertCleanError(r, phrase);
    }

    [TestCase("15043", "--logit-bias 15043: expected TOKEN_ID(+|-)BIAS")]
    [TestCase("x+1", "--logit-bias x+1")]
    [TestCase("99999+1", "token 99999 is outside the vocabulary")]
    [TestCase("3+inf", "--logit-bias")]
    [TestCase("3=", "--logit-bias 3=: expected")]
    [TestCase("=1", "--logit-bias =1: expected")]
    [TestCase("3=nan", "--logit-bias 3=nan")]
    [TestCase("3=+-1", "--logit-bias 3=+-1")]
    public void GenerateRefusesBadLogitBiases(string value, string phrase)
    {
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once", "-n", "4", "--logit-bias", value), phrase);
    }

    [Test]
    public void A_banned_token_is_never_generated()
    {
        string[] args = ["generate", "-m", SharedData.Model(Model), "-p", "Once upon a time", "-n", "12", "--temp", "0", "--json", "--ignore-eos"];
        var plain = CliRunner.Run(args);
        Assert.That(plain.ExitCode, Is.EqualTo(0), plain.Err);
        using var a = JsonDocument.Parse(plain.Out);
        int first = a.RootElement.GetProperty("tokens")[0].GetInt32();
        var banned = CliRunner.Run([.. args, "--logit-bias", $"{first}-inf", "-l", "0+0.5"]);
        Assert.That(banned.ExitCode, Is.EqualTo(0), banned.Err);
        using var b = JsonDocument.Parse(banned.Out);
        var tokens = b.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToList();
        Assert.That(tokens, Has.Count.EqualTo(12));
        Assert.That(tokens, Does.Not.Contain(first));
        // TOKEN_ID=BIAS is the same bias.
        var same = CliRunner.Run([.. args, "--logit-bias", $"{first}=-inf", "-l", "0=0.5"]);
        Assert.That(same.ExitCode, Is.EqualTo(0), same.Err);
        using var c = JsonDocument.Parse(same.Out);
        Assert.That(c.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()), Is.EqualTo(tokens));
    }

    [TestCase("lookup", "dynamic", "--tree dynamic")]
    [TestCase("self", "bushy", "--tree bushy")]
    public void GenerateRefusesATreeShapeTheMethodCannotDraft(string method, string tree, string phrase)
    {
        var r = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once", "-n", "4", "--speculate", method, "--tree", tree);
        AssertCleanError(r, phrase);
    }

    [Test]
    public void GenerateStreamsPromptThenTextThenStats()
    {
        var r = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once upon a time", "-n", "16", "--seed", "3");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.StartWith("Once upon a time"));
        Assert.That(r.Out.Length, Is.GreaterThan("Once upon a time".Length + 10));
        Assert.That(r.Err, Does.Match(@"prompt: \d+ tokens, [\d.]+ tok/s \| generated: \d+ tokens, [\d.]+ tok/s"));
    }

    [Test]
    public void TokenizeJsonFromVocabOnlyGguf()
    {
        var r = CliRunner.Run("tokenize", "-m", SharedData.Path("vocab", "ggml-vocab-llama-spm.gguf"), "--text", "Hello world", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        // ggml-vocab-llama-spm.gguf.out: "Hello world" -> 15043 3186
        Assert.That(doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(new[] { 15043, 3186 }));
    }

    [Test]
    public void InspectListsTensors()
    {
        var r = CliRunner.Run("inspect", "-m", SharedData.Model(Model));
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.Contain("general.architecture"));
        Assert.That(r.Out, Does.Match(@"blk\.0\.attn_q\.weight +Q8_0 +\[128, 128\]"));
    }

    [Test]
    public void PerplexityPrintsPpl()
    {
        string story = Path.Combine(AppContext.BaseDirectory, "Data", "story.txt");
        var r = CliRunner.Run("perplexity", "-m", SharedData.Model(Model), "-f", story, "-c", "128");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.Match(@"PPL = \d+\.\d+"));
    }

    [Test]
    public void ChatAnswersAndQuitsAtEndOfInput()
    {
        var r = CliRunner.RunWithInput("Tell me a story\n/exit\n", "chat", "-m", SharedData.Model(Model), "-n", "20", "--seed", "1");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        Assert.That(r.Err, Does.Contain("chat format: Plain"));
        Assert.That(r.Out.Replace("> ", "").Trim().Length, Is.GreaterThan(0));
    }

    [Test]
    public void GenerateAndChatNeverPrintTheEndMarker()
    {
        // llama.cpp's greedy continuation of golden p2 is "<|end_story|>" spelled in ordinary tokens, then EOS.
        var g = Golden.GoldenCase.Load("tinystories-656k-q8_0", 2);
        var gen = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", g.Prompt, "-n", "20", "--temp", "0", "--json");
        Assert.That(gen.ExitCode, Is.EqualTo(0), gen.Err);
        using (var doc = JsonDocument.Parse(gen.Out))
        {
            Assert.That(doc.RootElement.GetProperty("text").GetString(), Is.Empty);
            Assert.That(doc.RootElement.GetProperty("finish_reason").GetString(), Is.EqualTo("EndOfGeneration"));
        }
        var special = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", g.Prompt, "-n", "20", "--temp", "0", "--special", "--no-display-prompt");
        Assert.That(special.Out.Trim(), Is.EqualTo("<|end_story|>"));
        // In chat, greedy TinyStories answers "Hi" with a story that ends in the spelled marker.
        var chat = CliRunner.RunWithInput("Hi\n/exit\n", "chat", "-m", SharedData.Model(Model), "-n", "300", "--temp", "0");
        var shown = CliRunner.RunWithInput("Hi\n/exit\n", "chat", "-m", SharedData.Model(Model), "-n", "300", "--temp", "0", "--special");
        Assert.That(chat.ExitCode, Is.EqualTo(0), chat.Err);
        Assert.That(shown.Out, Does.Contain("<|end_story|>"), "the marker is there to hide");
        Assert.That(chat.Out, Does.Not.Contain("<|").And.Not.Contain("end_story"));
        Assert.That(chat.Out, Is.EqualTo(shown.Out.Replace("<|end_story|>", "")));
    }

    [Test]
    public void ConstraintOptionsShapeTheOutputAndBadOnesAreNamed()
    {
        var r = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Tom said", "--regex", "[A-Z][a-z]+ (is|was) (happy|sad)\\.", "--seed", "2", "--no-display-prompt", "-n", "40");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        Assert.That(r.Out.Trim(), Does.Match(@"^[A-Z][a-z]+ (is|was) (happy|sad)\.$"));
        Assert.That(r.Err, Does.Contain("stop: EndOfGeneration"));
        using var dir = new Formats.TempDirectory();
        string gbnf = Path.Combine(dir.Path, "yes.gbnf"), bad = Path.Combine(dir.Path, "bad.gbnf"), schema = Path.Combine(dir.Path, "s.json");
        File.WriteAllText(gbnf, "root ::= (\"yes\" | \"no\") \"!\"\n");
        File.WriteAllText(bad, "root ::= \"yes\"\nroot ::= ok\n");
        File.WriteAllText(schema, "{\"type\": \"integer\", \"minimum\": 10, \"maximum\": 20}");
        var yes = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Tom said", "--grammar", gbnf, "--no-display-prompt", "--temp", "0");
        Assert.That(yes.Out.Trim(), Is.AnyOf("yes!", "no!"));
        var n = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Tom is", "--json-schema", schema, "--no-display-prompt", "--seed", "4");
        Assert.That(int.Parse(n.Out.Trim(), System.Globalization.CultureInfo.InvariantCulture), Is.InRange(10, 20));
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "x", "--grammar", bad), bad, "line 2", "defined twice");
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "x", "--regex", "(a)\\1"), "--regex", "backreferences");
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "x", "--json-object"), "vocabulary");
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "x", "--json-schema", Path.Combine(dir.Path, "none.json")), "none.json", "no such file");
    }

    [Test]
    public void CautiousReportsItsTrialsInJson()
    {
        var r = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once upon a time", "-n", "40", "--seed", "2", "--cautious", "--cautious-trials", "6", "--json", "--ignore-eos");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var c = doc.RootElement.GetProperty("cautious");
        Assert.That(c.GetProperty("uncertain_steps").GetInt32(), Is.GreaterThan(0));
        Assert.That(c.GetProperty("trials").GetInt32(), Is.InRange(2 * c.GetProperty("uncertain_steps").GetInt32(), 6 * c.GetProperty("uncertain_steps").GetInt32()));
        Assert.That(doc.RootElement.GetProperty("tokens").GetArrayLength(), Is.EqualTo(40));
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "x", "--cautious", "--temp", "0"), "--cautious", "needs sampling");
    }

    [Test]
    public void TokenHealingCompletesACutWord()
    {
        var r = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once upon a ti", "-n", "6", "--temp", "0", "--token-healing");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.StartWith("Once upon a time"));
    }

    [Test]
    public void MissingModelFile()
    {
        var r = CliRunner.Run("generate", "-m", "/no/such/model.gguf", "-p", "hi");
        AssertCleanError(r, "/no/such/model.gguf", "no such file");
    }

    [Test]
    public void TruncatedGguf()
    {
        foreach (int keep in new[] { 10, 300, 40000 })
        {
            using var f = new DamagedCopy(Model, d => d[..keep]);
            AssertCleanError(CliRunner.Run("generate", "-m", f.Path, "-p", "hi"), f.Path, "truncated");
        }
    }

    [Test]
    public void TensorDataPastTheEnd()
    {
        using var f = new DamagedCopy(Model, d => d[..^100]);
        AssertCleanError(CliRunner.Run("generate", "-m", f.Path, "-p", "hi"), f.Path, "past the end of the file");
    }

    [Test]
    public void WrongMagic()
    {
        using var f = new DamagedCopy(Model, d => { "GGML"u8.CopyTo(d); return d; });
        AssertCleanError(CliRunner.Run("generate", "-m", f.Path, "-p", "hi"), f.Path, "not a GGUF file");
    }

    [Test]
    public void UnknownVersion()
    {
        using var f = new DamagedCopy(Model, d => { BitConverter.GetBytes(7u).CopyTo(d, 4); return d; });
        AssertCleanError(CliRunner.Run("generate", "-m", f.Path, "-p", "hi"), f.Path, "unsupported GGUF version 7");
    }

    [Test]
    public void ShapesThatContradictTheMetadata()
    {
        using var f = new DamagedCopy(Model, d => DamagedCopy.SetUInt32(d, "llama.embedding_length", 256));
        AssertCleanError(CliRunner.Run("generate", "-m", f.Path, "-p", "hi"), f.Path, "token_embd.weight", "metadata implies");
    }

    [Test]
    public void MissingTokenizer()
    {
        using var f = new DamagedCopy(Model, d => DamagedCopy.ReplaceAscii(d, "tokenizer.ggml.model", "tokenizer.ggml.xxxxx"));
        AssertCleanError(CliRunner.Run("generate", "-m", f.Path, "-p", "hi"), f.Path, "tokenizer");
    }

    [Test]
    public void UnsupportedTensorType()
    {
        // F16 -> I16 keeps the byte size (2 bytes an element), so only the type is wrong.
        using var f = new DamagedCopy("tinystories-656k-f16.gguf", d => DamagedCopy.SetTensorType(d, "blk.0.attn_q.weight", 25));
        AssertCleanError(CliRunner.Run("generate", "-m", f.Path, "-p", "hi"), f.Path, "blk.0.attn_q.weight", "I16", "not support");
    }

    [Test]
    public void GgufVersion2LoadsLikeVersion3()
    {
        // v2 and v3 share the layout (v3 added big-endian files, marked elsewhere); only the version field differs.
        using var f = new DamagedCopy(Model, d => { BitConverter.GetBytes(2u).CopyTo(d, 4); return d; });
        var v2 = CliRunner.Run("generate", "-m", f.Path, "-p", "Once upon a time", "-n", "8", "--temp", "0", "--json");
        var v3 = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once upon a time", "-n", "8", "--temp", "0", "--json");
        Assert.That(v2.ExitCode, Is.EqualTo(0), v2.Err);
        Assert.That(v2.Out[..v2.Out.IndexOf("\"finish_reason\"")], Is.EqualTo(v3.Out[..v3.Out.IndexOf("\"finish_reason\"")]));
    }

    [Test]
    public void EmptyPrompt() =>
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", ""), "--prompt", "empty");

    [Test]
    public void PromptLongerThanTheContext() =>
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "Once upon a time there was a cat", "-c", "4"),
            "--prompt", "context of 4");

    [Test]
    public void ContextLargerThanTheModel() =>
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "hi", "-c", "100000"), "--context 100000");

    [Test]
    public void BadSamplingOption() =>
        AssertCleanError(CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "hi", "--top-p", "2"), "--top-p");

    [Test]
    public void MissingPerplexityFile() =>
        AssertCleanError(CliRunner.Run("perplexity", "-m", SharedData.Model(Model), "-f", "/no/such.txt"), "/no/such.txt");

    [Test]
    public void Generate_on_cuda_without_a_device_says_why_and_exits_3()
    {
        string reason = Cuda.CudaDevice.RequireAbsent();
        var r = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "hi", "--backend", "cuda");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.Err);
        Assert.That(r.Err.Trim(), Is.EqualTo($"error: cuda: no CUDA device: {reason}"));
    }

    [Test]
    public void Bench_on_cuda_without_a_device_says_why_and_exits_3()
    {
        string reason = Cuda.CudaDevice.RequireAbsent();
        var r = CliRunner.Run("bench", "-m", SharedData.Model(Model), "-p", "8", "-n", "4", "-r", "1", "--backend", "cuda");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.Err);
        Assert.That(r.Err.Trim(), Is.EqualTo($"error: cuda: no CUDA device: {reason}"));
    }

    [Test]
    public void Generate_rejects_an_unknown_backend()
    {
        var r = CliRunner.Run("generate", "-m", SharedData.Model(Model), "-p", "hi", "--backend", "tpu");
        Assert.That(r.ExitCode, Is.Not.EqualTo(0));
        Assert.That(r.Err + r.Out, Does.Contain("tpu"));
    }

    [Test]
    public void Golden_passes_on_the_cpu_for_one_model()
    {
        var r = CliRunner.Run("golden", SharedData.Root!, "--only", "tinystories-656k-q8_0");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("cpu: 3/3 golden cases passed"));
        Assert.That(r.Out.Split('\n').Count(l => l.Contains("tinystories-656k-q8_0") && l.TrimEnd().EndsWith("ok")), Is.EqualTo(3));
    }

    [Test]
    public void Golden_on_cuda_without_a_device_exits_3()
    {
        string reason = Cuda.CudaDevice.RequireAbsent();
        var r = CliRunner.Run("golden", SharedData.Root!, "--backend", "cuda");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.Err);
        Assert.That(r.Err.Trim(), Is.EqualTo($"error: cuda: no CUDA device: {reason}"));
    }

    [Test]
    public void Golden_names_a_folder_without_golden_data() =>
        AssertCleanError(CliRunner.Run("golden", "/no/such/dir"), "/no/such/dir", "golden/");
}
