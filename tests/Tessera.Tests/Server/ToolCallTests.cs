using System.Text;
using System.Text.Json;
using NUnit.Framework;
using Tessera.Api;
using Tessera.Cli.Server;

namespace Tessera.Tests.Server;

/// <summary>
/// Tool calls and JSON objects over HTTP, on a model whose vocabulary can write them (<see cref="SpmModel"/>): a
/// required call always comes back as <c>tool_calls</c> whose arguments parse and follow the function's schema, the
/// streamed deltas accumulate to the same call, and bad tool definitions are 400s naming the field.
/// </summary>
[NonParallelizable]
public class ToolCallTests
{
    private InferenceEngine _engine = null!;
    private TesseraServer _server = null!;
    private HttpClient _http = null!;

    private const string Weather = """
        {"type": "function", "function": {"name": "get_weather", "description": "the weather in a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 16}, "unit": {"enum": ["c", "f"]},
           "days": {"type": "integer", "minimum": 1, "maximum": 7}}, "required": ["city", "unit"], "additionalProperties": false}}}
        """;
    private const string Time = """{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"enum": ["utc", "local"]}}, "required": ["zone"]}}}""";

    [OneTimeSetUp]
    public async Task Start()
    {
        _engine = await InferenceEngine.LoadAsync(SpmModel.Path, new EngineOptions { ContextSize = 1024, MaxSequences = 8 });
        _server = await TesseraServer.StartAsync(_engine, new ServerOptions("127.0.0.1", 0, "spm-tiny"));
        _http = new HttpClient { BaseAddress = _server.Address, Timeout = TimeSpan.FromSeconds(120) };
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _engine.Dispose();
    }

    private async Task<(int, JsonElement)> Post(string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var r = await _http.PostAsync("/v1/chat/completions", content);
        return ((int)r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static string Request(string extra, int seed, bool stream = false) =>
        $$"""{"messages": [{"role": "user", "content": "What is the weather in Paris?"}], "max_tokens": 160, "temperature": 1, "seed": {{seed}}, "stream": {{(stream ? "true" : "false")}}, "tools": [{{Weather}}, {{Time}}]{{extra}}}""";

    private static void AssertWeatherArguments(string arguments)
    {
        using var doc = JsonDocument.Parse(arguments);
        var a = doc.RootElement;
        Assert.That(a.ValueKind, Is.EqualTo(JsonValueKind.Object), arguments);
        Assert.That(a.GetProperty("city").GetString()!.EnumerateRunes().Count(), Is.LessThanOrEqualTo(16), arguments);
        Assert.That(a.GetProperty("unit").GetString(), Is.AnyOf("c", "f"));
        if (a.TryGetProperty("days", out var d)) Assert.That(d.GetInt32(), Is.InRange(1, 7));
        Assert.That(a.EnumerateObject().Select(p => p.Name), Is.SubsetOf(new[] { "city", "unit", "days" }));
    }

    [Test]
    public async Task ARequiredCallAlwaysComesBackAsToolCallsWithArgumentsThatFollowTheSchema()
    {
        var names = new HashSet<string>();
        for (int seed = 1; seed <= 12; seed++)
        {
            var (status, r) = await Post(Request(""", "tool_choice": "required" """, seed));
            Assert.That(status, Is.EqualTo(200), r.ToString());
            var choice = r.GetProperty("choices")[0];
            Assert.That(choice.GetProperty("finish_reason").GetString(), Is.EqualTo("tool_calls"), r.ToString());
            var message = choice.GetProperty("message");
            Assert.That(message.GetProperty("content").ValueKind, Is.EqualTo(JsonValueKind.Null));
            var call = message.GetProperty("tool_calls")[0];
            Assert.That(call.GetProperty("type").GetString(), Is.EqualTo("function"));
            Assert.That(call.GetProperty("id").GetString(), Does.StartWith("call_"));
            string name = call.GetProperty("function").GetProperty("name").GetString()!;
            string args = call.GetProperty("function").GetProperty("arguments").GetString()!;
            names.Add(name);
            if (name == "get_weather") AssertWeatherArguments(args);
            else
            {
                Assert.That(name, Is.EqualTo("get_time"));
                using var doc = JsonDocument.Parse(args);
                Assert.That(doc.RootElement.GetProperty("zone").GetString(), Is.AnyOf("utc", "local"));
            }
        }
        Assert.That(names, Has.Count.EqualTo(2), "sampling picks either tool");
    }

    [Test]
    public async Task ANamedCallIsThatFunctionAndTheStreamAccumulatesToTheSameCall()
    {
        const string named = """, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}""";
        for (int seed = 1; seed <= 4; seed++)
        {
            var (_, whole) = await Post(Request(named, seed));
            var call = whole.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function");
            Assert.That(call.GetProperty("name").GetString(), Is.EqualTo("get_weather"));
            AssertWeatherArguments(call.GetProperty("arguments").GetString()!);

            var events = await ServerFixture.PostStream(_http, "/v1/chat/completions", Request(named, seed, stream: true));
            string? id = null, name = null, finish = null;
            var args = new StringBuilder();
            int headers = 0;
            foreach (var e in events)
            {
                var c = e.GetProperty("choices")[0];
                if (c.GetProperty("finish_reason").ValueKind == JsonValueKind.String) finish = c.GetProperty("finish_reason").GetString();
                var delta = c.GetProperty("delta");
                Assert.That(delta.TryGetProperty("content", out var content) && content.GetString() is { Length: > 0 }, Is.False, "no content in a call");
                if (!delta.TryGetProperty("tool_calls", out var calls)) continue;
                var tc = calls[0];
                Assert.That(tc.GetProperty("index").GetInt32(), Is.EqualTo(0));
                if (tc.TryGetProperty("id", out var i)) { id = i.GetString(); headers++; name = tc.GetProperty("function").GetProperty("name").GetString(); }
                if (tc.GetProperty("function").TryGetProperty("arguments", out var a)) args.Append(a.GetString());
            }
            Assert.That(headers, Is.EqualTo(1), "id and name only in the first delta");
            Assert.That(id, Does.StartWith("call_"));
            Assert.That(name, Is.EqualTo("get_weather"));
            Assert.That(finish, Is.EqualTo("tool_calls"));
            Assert.That(args.ToString(), Is.EqualTo(call.GetProperty("arguments").GetString()), $"seed {seed}: the same draws, so the same call");
        }
    }

    [Test]
    public async Task ToolResultsGoBackIntoTheConversation()
    {
        string body = $$$"""
            {"messages": [{"role": "user", "content": "Weather in Oslo?"},
              {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\", \"unit\": \"c\"}"}}]},
              {"role": "tool", "tool_call_id": "call_1", "content": "-3 C, snow"}],
             "max_tokens": 8, "temperature": 0, "tools": [{{{Weather}}}], "tool_choice": "none"}
            """;
        var (status, r) = await Post(body);
        Assert.That(status, Is.EqualTo(200), r.ToString());
        Assert.That(r.GetProperty("choices")[0].GetProperty("message").GetProperty("content").ValueKind, Is.EqualTo(JsonValueKind.String));
        int withResult = r.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        var (_, shorter) = await Post(body.Replace("-3 C, snow", "x"));
        Assert.That(withResult, Is.GreaterThan(shorter.GetProperty("usage").GetProperty("prompt_tokens").GetInt32()), "the tool's content is in the prompt");
    }

    [Test]
    public async Task JsonObjectsFollowTheirSchemaOnEverySample()
    {
        const string schema = """{"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "minimum": 0, "maximum": 120}, "pets": {"type": "array", "items": {"enum": ["cat", "dog", "bird"]}, "maxItems": 3}}, "required": ["name", "age", "pets"], "additionalProperties": false}""";
        for (int seed = 1; seed <= 20; seed++)
        {
            var (status, r) = await Post("""{"messages": [{"role": "user", "content": "A person?"}], "max_tokens": 120, "temperature": 1, "seed": """
                + seed + """, "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": """ + schema + "}}}");
            Assert.That(status, Is.EqualTo(200));
            Assert.That(r.GetProperty("choices")[0].GetProperty("finish_reason").GetString(), Is.EqualTo("stop"));
            string content = r.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
            using var doc = JsonDocument.Parse(content);
            var v = doc.RootElement;
            Assert.That(v.GetProperty("name").GetString()!.EnumerateRunes().Count(), Is.LessThanOrEqualTo(12), content);
            Assert.That(v.GetProperty("age").GetInt32(), Is.InRange(0, 120));
            Assert.That(v.GetProperty("pets").GetArrayLength(), Is.LessThanOrEqualTo(3));
            Assert.That(v.GetProperty("pets").EnumerateArray().Select(p => p.GetString()), Has.All.AnyOf("cat", "dog", "bird"));
        }
    }

    [Test]
    public async Task TheOfficialClientGetsCallsAndObjects()
    {
        var r = await OpenAiClientTests.RunScript("tools.mjs", _server.Address);
        TestContext.Out.WriteLine(r.ToString());
        var call = r.GetProperty("call");
        Assert.That(call.GetProperty("name").GetString(), Is.EqualTo("get_weather"));
        Assert.That(call.GetProperty("finish").GetString(), Is.EqualTo("tool_calls"));
        Assert.That(r.GetProperty("parsed").ValueKind, Is.EqualTo(JsonValueKind.Object), "JSON.parse of the arguments");
        AssertWeatherArguments(call.GetProperty("arguments").GetString()!);
        var streamed = r.GetProperty("streamed");
        Assert.That(streamed.GetProperty("name").GetString(), Is.EqualTo("get_weather"));
        Assert.That(streamed.GetProperty("arguments").GetString(), Is.EqualTo(call.GetProperty("arguments").GetString()), "the SDK's accumulator gets the same call");
        Assert.That(streamed.GetProperty("finish").GetString(), Is.EqualTo("tool_calls"));
        var o = r.GetProperty("objects");
        Assert.That(o.GetProperty("samples").GetInt32(), Is.EqualTo(50));
        Assert.That(o.GetProperty("parsed").GetInt32(), Is.EqualTo(50));
        Assert.That(o.GetProperty("valid").GetInt32(), Is.EqualTo(50));
    }

    [TestCase(""", "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "strin"}}}}}]""", "tools[0].function.parameters", TestName = "tool parameters invalid")]
    [TestCase(""", "tools": [{"type": "function", "function": {"name": "bad name", "parameters": {}}}]""", "tools[0].function.name", TestName = "tool name invalid")]
    [TestCase(""", "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]""", "tools[1].function.name", TestName = "tool defined twice")]
    [TestCase(""", "tools": [{"type": "retrieval"}]""", "tools[0].type", TestName = "tool type unknown")]
    [TestCase(""", "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}""", "tool_choice", TestName = "tool_choice names no tool")]
    [TestCase(""", "tool_choice": "required" """, "tool_choice", TestName = "tool_choice without tools")]
    [TestCase(""", "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes" """, "tool_choice", TestName = "tool_choice unknown")]
    [TestCase(""", "tools": [{"type": "function", "function": {"name": "f"}}], "response_format": {"type": "json_object"}""", "response_format", TestName = "tools and response_format")]
    [TestCase(""", "messages": [{"role": "tool", "content": "x"}]""", "messages[0].tool_call_id", TestName = "tool message without id")]
    public async Task BadToolsAre400NamingTheField(string extra, string param)
    {
        string body = """{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4""" + extra + "}";
        if (extra.Contains("\"messages\"")) body = """{"max_tokens": 4""" + extra + "}";
        var (status, r) = await Post(body);
        Assert.That(status, Is.EqualTo(400), r.ToString());
        Assert.That(r.GetProperty("error").GetProperty("param").GetString(), Is.EqualTo(param), r.ToString());
        var (ok, _) = await Post(Request(""", "tool_choice": "required" """, 1));
        Assert.That(ok, Is.EqualTo(200), "the server keeps serving");
    }
}
