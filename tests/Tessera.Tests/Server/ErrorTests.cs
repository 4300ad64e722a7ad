using System.Text;
using System.Text.Json;
using NUnit.Framework;
using static Tessera.Tests.Server.ServerFixture;

namespace Tessera.Tests.Server;

/// <summary>Every refused request is a 400 with OpenAI's error body naming the field, and the server keeps serving.</summary>
public class ErrorTests
{
    private static readonly string Long = string.Concat(Enumerable.Repeat("the big dog ran to the park and ", 1200));

    [TestCase("/v1/completions", "{\"prompt\": \"x\",", null, TestName = "malformed JSON")]
    [TestCase("/v1/completions", "[1,2]", null, TestName = "body not an object")]
    [TestCase("/v1/completions", "{\"max_tokens\": 5}", "prompt", TestName = "prompt missing")]
    [TestCase("/v1/completions", "{\"prompt\": \"\"}", "prompt", TestName = "prompt empty")]
    [TestCase("/v1/completions", "{\"prompt\": 42}", "prompt", TestName = "prompt wrong type")]
    [TestCase("/v1/completions", "{\"prompt\": [1, 2, 3]}", "prompt", TestName = "prompt token array")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"temperature\": \"hot\"}", "temperature", TestName = "temperature wrong type")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"temperature\": -0.5}", "temperature", TestName = "temperature negative")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"top_p\": 0}", "top_p", TestName = "top_p zero")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"top_p\": 1.5}", "top_p", TestName = "top_p above one")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": -1}", "max_tokens", TestName = "max_tokens negative")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 2.5}", "max_tokens", TestName = "max_tokens not integer")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"n\": 17}", "n", TestName = "n above sixteen")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"n\": 0}", "n", TestName = "n zero")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"n\": \"1\"}", "n", TestName = "n wrong type")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"stop\": 7}", "stop", TestName = "stop wrong type")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"stop\": [\"a\", 1]}", "stop", TestName = "stop array with number")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"stop\": \"\"}", "stop", TestName = "stop empty")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"seed\": \"abc\"}", "seed", TestName = "seed wrong type")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"logprobs\": 6}", "logprobs", TestName = "logprobs above five")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"logprobs\": true}", "logprobs", TestName = "completions logprobs bool")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"stream\": \"yes\"}", "stream", TestName = "stream wrong type")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"echo\": true, \"logprobs\": 1, \"token_healing\": true}", "echo", TestName = "echo with logprobs and token healing")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"suffix\": \"y\"}", "suffix", TestName = "suffix without fill-in-the-middle tokens")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"suffix\": 3}", "suffix", TestName = "suffix wrong type")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"speculate\": \"medusa\"}", "speculate", TestName = "speculate unknown")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"speculate\": 3}", "speculate", TestName = "speculate wrong type")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"speculate\": \"draft\"}", "speculate", TestName = "speculate draft without a draft model")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"speculate\": \"lookup\", \"draft_max\": 0}", "draft_max", TestName = "draft_max zero")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"speculate\": \"self\", \"tree\": \"bushy\"}", "tree", TestName = "tree unknown")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"5\": 101}}", "logit_bias", TestName = "logit_bias above 100")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"hello\": 1}}", "logit_bias", TestName = "logit_bias key not a token id")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"99999\": 1}}", "logit_bias", TestName = "logit_bias token outside the vocabulary")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": [1, 2]}", "logit_bias", TestName = "logit_bias wrong type")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"5\": \"a lot\"}}", "logit_bias", TestName = "logit_bias value not a number")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"speculate\": \"lookup\", \"tree\": \"dynamic\"}", "tree", TestName = "tree dynamic without a draft model")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"response_format\": {\"type\": \"yaml\"}}", "response_format.type", TestName = "response_format type unknown")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"response_format\": {\"type\": \"json_schema\"}}", "response_format.json_schema", TestName = "response_format json_schema missing")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"a\", \"schema\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\"}}, \"required\": [\"b\"]}}}}", "response_format.json_schema.schema", TestName = "response_format invalid schema")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"a\", \"schema\": {\"type\": \"string\", \"format\": \"uuid\"}}}}", "response_format.json_schema.schema", TestName = "response_format unsupported schema keyword")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"response_format\": {\"type\": \"json_object\"}}", "response_format", TestName = "json_object the vocabulary cannot write")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"grammar\": \"root ::= \\\"a\\\" b\"}", "grammar", TestName = "grammar that does not parse")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"grammar\": \"root ::= [^\\\\x00-\\\\U0010FFFF]\"}", "grammar", TestName = "grammar that matches nothing")]
    [TestCase("/v1/completions", "{\"prompt\": \"x\", \"grammar\": \"root ::= \\\"a\\\"\", \"json_schema\": {\"type\": \"string\"}}", "json_schema", TestName = "two constraints")]
    [TestCase("/v1/chat/completions", "{\"messages\": []}", "messages", TestName = "messages empty")]
    [TestCase("/v1/chat/completions", "{\"messages\": \"hi\"}", "messages", TestName = "messages wrong type")]
    [TestCase("/v1/chat/completions", "{\"prompt\": \"hi\"}", "messages", TestName = "messages missing")]
    [TestCase("/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", "messages[0].role", TestName = "role unknown")]
    [TestCase("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages[0].content", TestName = "content wrong type")]
    [TestCase("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": 3}", "logprobs", TestName = "chat logprobs not bool")]
    [TestCase("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_logprobs\": 2}", "top_logprobs", TestName = "top_logprobs without logprobs")]
    [TestCase("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 20, \"stream\": true}", "n", TestName = "chat n twenty streaming")]
    public async Task BadRequestIs400NamingTheField(string path, string body, string? param)
    {
        var (status, error) = await PostJson(path, body);
        AssertError(status, error, param);
        await ServerStillServes();
    }

    [Test]
    public async Task PromptOverTheContextIs400([Values] bool chat)
    {
        Assert.That(Engine.CountTokens(Long), Is.GreaterThan(Engine.ContextSize), "the test prompt must overflow the context");
        string body = chat
            ? JsonSerializer.Serialize(new Dictionary<string, object> { ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = Long } } }, Json.Default.DictionaryStringObject)
            : JsonSerializer.Serialize(new Dictionary<string, object> { ["prompt"] = Long, ["stream"] = true }, Json.Default.DictionaryStringObject);
        var (status, error) = await PostJson(chat ? "/v1/chat/completions" : "/v1/completions", body);
        AssertError(status, error, chat ? "messages" : "prompt");
        Assert.That(error.GetProperty("error").GetProperty("message").GetString(), Does.Contain($"context of {Engine.ContextSize}"));
        await ServerStillServes();
    }

    private static void AssertError(int status, JsonElement body, string? param)
    {
        Assert.That(status, Is.EqualTo(400), body.ToString());
        var e = body.GetProperty("error");
        Assert.That(e.GetProperty("type").GetString(), Is.EqualTo("invalid_request_error"));
        Assert.That(e.GetProperty("message").GetString(), Is.Not.Empty);
        Assert.That(e.GetProperty("code").ValueKind, Is.EqualTo(JsonValueKind.Null));
        var p = e.GetProperty("param");
        if (param is null) Assert.That(p.ValueKind, Is.EqualTo(JsonValueKind.Null));
        else Assert.That(p.GetString(), Is.EqualTo(param));
    }

    private static async Task ServerStillServes()
    {
        var (status, body) = await PostJson("/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 2}");
        Assert.That(status, Is.EqualTo(200), body.ToString());
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>[]))]
[System.Text.Json.Serialization.JsonSerializable(typeof(bool))]
internal sealed partial class Json : System.Text.Json.Serialization.JsonSerializerContext;
