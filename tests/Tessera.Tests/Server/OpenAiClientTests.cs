using System.Diagnostics;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using Tessera.Chat;
using Tessera.Generation;
using Tessera.Sampling;
using static Tessera.Tests.Server.ServerFixture;

namespace Tessera.Tests.Server;

/// <summary>The official <c>openai</c> npm client against the real server (openai-client/client.mjs), its answers
/// checked against the library's own results.</summary>
public class OpenAiClientTests
{
    [Test]
    public async Task TheOfficialClientGetsTheLibrarysAnswers()
    {
        var plain8 = await Engine.CompleteAsync("Once upon a time", new GenerationOptions { MaxTokens = 8, Sampling = SamplingOptions.Greedy });
        int banned = plain8.TokenIds[0];
        var r = await RunClient(banned);
        var greedy = new GenerationOptions { MaxTokens = 20, Sampling = SamplingOptions.Greedy };
        var expected = await Engine.CompleteAsync("Once upon a time", greedy);

        var c = r.GetProperty("completion");
        Assert.That(c.GetProperty("text").GetString(), Is.EqualTo(expected.Text));
        Assert.That(c.GetProperty("finish").GetString(), Is.EqualTo("length"));
        Assert.That(c.GetProperty("model").GetString(), Is.EqualTo("tinystories"));
        Assert.That(c.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), Is.EqualTo(expected.PromptTokens));
        Assert.That(c.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), Is.EqualTo(20));
        Assert.That(c.GetProperty("tokenLogprobs").GetArrayLength(), Is.EqualTo(20));

        var s = r.GetProperty("completionStream");
        Assert.That(s.GetProperty("text").GetString(), Is.EqualTo(expected.Text));
        Assert.That(s.GetProperty("finish").GetString(), Is.EqualTo("length"));
        Assert.That(s.GetProperty("usage").GetProperty("total_tokens").GetInt32(), Is.EqualTo(expected.PromptTokens + 20));

        ChatMessage[] messages = [new("user", "Tell me a story about a cat.")];
        var reply = new StringBuilder();
        FinishReason? finish = null;
        await foreach (var chunk in Engine.GenerateAsync(messages, greedy)) { reply.Append(chunk.Text); finish ??= chunk.FinishReason; }
        string finishName = finish is FinishReason.MaxTokens or FinishReason.ContextFull ? "length" : "stop";
        foreach (string name in new[] { "chat", "chatStream" })
        {
            var m = r.GetProperty(name);
            Assert.That(m.GetProperty("text").GetString(), Is.EqualTo(reply.ToString()), name);
            Assert.That(m.GetProperty("role").GetString(), Is.EqualTo("assistant"), name);
            Assert.That(m.GetProperty("finish").GetString(), Is.EqualTo(finishName), name);
        }
        Assert.That(r.GetProperty("chat").GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), Is.EqualTo(Engine.CountTokens(messages)));

        var error = r.GetProperty("error");
        Assert.That(error.GetProperty("status").GetInt32(), Is.EqualTo(400));
        Assert.That(error.GetProperty("type").GetString(), Is.EqualTo("invalid_request_error"));
        Assert.That(error.GetProperty("param").GetString(), Is.EqualTo("temperature"));
        Assert.That(r.GetProperty("models").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { ModelId }));

        // n: 4 — four choices, each the library's choice with the same seed, the prompt computed once.
        ChatMessage[] story = [new("user", "Write about a red ball and a dog.")];
        var sampled = new GenerationOptions { MaxTokens = 12, Choices = 4, Sampling = new SamplingOptions { Temperature = 1, TopP = 1, TopK = 0, MinP = 0, Seed = 5 } };
        var texts = new StringBuilder[4];
        for (int i = 0; i < 4; i++) texts[i] = new StringBuilder();
        await foreach (var chunk in Engine.GenerateAsync(story, sampled)) texts[chunk.Choice].Append(chunk.Text);
        var ch = r.GetProperty("choices");
        Assert.That(ch.GetProperty("indexes").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(new[] { 0, 1, 2, 3 }));
        Assert.That(ch.GetProperty("texts").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(texts.Select(t => t.ToString())));
        Assert.That(texts.Select(t => t.ToString()).Distinct().Count(), Is.GreaterThan(1), "seeded choices differ");
        Assert.That(ch.GetProperty("computed").GetInt32(), Is.EqualTo(Engine.CountTokens(story)), "the prompt was computed once for the four");
        Assert.That(ch.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), Is.EqualTo(Engine.CountTokens(story)));
        var streamed = ch.GetProperty("streamed").EnumerateArray().ToArray();
        Assert.That(streamed.Select(c => c.GetProperty("text").GetString()), Is.EqualTo(texts.Select(t => t.ToString())), "streamed per index");
        Assert.That(streamed.Select(c => c.GetProperty("finish").GetString()), Has.All.Not.Null);

        var bias = r.GetProperty("logitBias");
        Assert.That(bias.GetProperty("unbiased").GetString(), Is.EqualTo(plain8.Text));
        var bannedRun = await Engine.CompleteAsync("Once upon a time", new GenerationOptions
        {
            MaxTokens = 8, Sampling = SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [banned] = -100 } },
        });
        Assert.That(bannedRun.TokenIds, Does.Not.Contain(banned));
        Assert.That(bias.GetProperty("biased").GetString(), Is.EqualTo(bannedRun.Text), "-100 bans the token");

        // response_format json_schema: every one of 50 samples at temperature 1 parses and validates.
        var k = r.GetProperty("constrained");
        TestContext.Out.WriteLine($"json_schema: {k}");
        Assert.That(k.GetProperty("samples").GetInt32(), Is.EqualTo(50));
        Assert.That(k.GetProperty("parsed").GetInt32(), Is.EqualTo(50), "JSON.parse succeeds on every sample");
        Assert.That(k.GetProperty("valid").GetInt32(), Is.EqualTo(50), "every sample validates against the schema");
        Assert.That(k.GetProperty("finishes").GetProperty("stop").GetInt32(), Is.EqualTo(50), "the grammar ends each one");
        Assert.That(k.GetProperty("examples").EnumerateArray().Select(e => e.GetString()).Distinct().Count(), Is.GreaterThan(1));
        var jo = k.GetProperty("jsonObject");
        Assert.That(jo.GetProperty("status").GetInt32(), Is.EqualTo(400));
        Assert.That(jo.GetProperty("param").GetString(), Is.EqualTo("response_format"));
        Assert.That(jo.GetProperty("message").GetString(), Does.Contain("vocabulary"));
        var bad = k.GetProperty("badSchema");
        Assert.That(bad.GetProperty("status").GetInt32(), Is.EqualTo(400));
        Assert.That(bad.GetProperty("param").GetString(), Is.EqualTo("response_format.json_schema.schema"));
        Assert.That(bad.GetProperty("message").GetString(), Does.Contain("'format' is not supported"));
    }

    private static Task<JsonElement> RunClient(int bannedToken) =>
        RunScript("client.mjs", Address, bannedToken.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Runs one of openai-client/*.mjs against the server at <paramref name="address"/>; its stdout, parsed.</summary>
    internal static async Task<JsonElement> RunScript(string script, Uri address, params string[] extra)
    {
        string root = RepoRoot();
        string clientDir = Path.Combine(root, ".cache", "openai-client");
        if (!File.Exists(Path.Combine(clientDir, "node_modules", "openai", "package.json")))
            Assert.Ignore($"the openai npm client is not installed in {clientDir}: run tests/fetch-openai-client.sh (needs node and npm)");
        var psi = new ProcessStartInfo("node")
        {
            ArgumentList = { Path.Combine(root, "tests", "Tessera.Tests", "Server", "openai-client", script), new Uri(address, "/v1").ToString(), clientDir },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in extra) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception) { Assert.Ignore("node is not on PATH: the openai client tests need Node.js (see tests/fetch-openai-client.sh)"); throw; }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using var hang = new CancellationTokenSource(TimeSpan.FromSeconds(120)); // a hang guard, not a timing check
            try { await p.WaitForExitAsync(hang.Token); }
            catch (OperationCanceledException) { p.Kill(); Assert.Fail("the openai client did not finish: " + await stderr); }
            Assert.That(p.ExitCode, Is.EqualTo(0), await stderr);
            return JsonDocument.Parse(await stdout).RootElement.Clone();
        }
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "tests", "fetch-openai-client.sh"))) return d.FullName;
        throw new AssertionException("repository root (with tests/fetch-openai-client.sh) not found above " + AppContext.BaseDirectory);
    }
}
