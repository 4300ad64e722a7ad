using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using Tessera.Api;
using Tessera.Cli.Server;

namespace Tessera.Tests.Server;

/// <summary>One real server on 127.0.0.1 (a free port) over the TinyStories model, shared by the server tests.</summary>
[SetUpFixture]
public sealed class ServerFixture
{
    private static InferenceEngine? _engine;
    private static TesseraServer? _server;
    private static HttpClient? _http;

    internal static InferenceEngine Engine => _engine ?? throw new InvalidOperationException("server not started");
    internal static HttpClient Http => _http ?? throw new InvalidOperationException("server not started");
    internal static Uri Address => _server!.Address;
    internal const string ModelId = "tinystories-656k-q8_0";

    [OneTimeSetUp]
    public async Task Start()
    {
        // Room for the load test's 64 streams in one batch.
        _engine = await InferenceEngine.LoadAsync(SharedData.Model(ModelId + ".gguf"), new EngineOptions { MaxSequences = 64 });
        _server = await TesseraServer.StartAsync(_engine, new ServerOptions("127.0.0.1", 0, ModelId));
        // A hang guard only (never a timing assertion): a stuck server fails the test instead of the whole run.
        _http = new HttpClient { BaseAddress = _server.Address, Timeout = TimeSpan.FromSeconds(120) };
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http?.Dispose();
        if (_server != null) await _server.DisposeAsync();
        _engine?.Dispose();
    }

    internal static async Task<(int Status, JsonElement Body)> PostJson(string path, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var r = await Http.PostAsync(path, content);
        string text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>Posts a streaming request and returns the parsed <c>data:</c> events (up to <c>[DONE]</c>, which must come).</summary>
    internal static Task<List<JsonElement>> PostStream(string path, string json) => PostStream(Http, path, json);

    /// <summary><see cref="PostStream(string, string)"/> to another server.</summary>
    internal static async Task<List<JsonElement>> PostStream(HttpClient http, string path, string json)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var r = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.That((int)r.StatusCode, Is.EqualTo(200), await Body(r));
        Assert.That(r.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
        using var reader = new StreamReader(await r.Content.ReadAsStreamAsync());
        return await ReadEvents(reader);
    }

    internal static async Task<List<JsonElement>> ReadEvents(StreamReader reader)
    {
        var events = new List<JsonElement>();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            Assert.That(line, Does.StartWith("data: "), "every SSE line is a data line");
            string data = line["data: ".Length..];
            Assert.That(await reader.ReadLineAsync(), Is.EqualTo(""), "each event ends with a blank line");
            if (data == "[DONE]")
            {
                Assert.That(await reader.ReadToEndAsync(), Is.Empty, "nothing after [DONE]");
                return events;
            }
            events.Add(JsonDocument.Parse(data).RootElement.Clone());
        }
        Assert.Fail("the stream ended without data: [DONE]");
        return events;
    }

    private static async Task<string> Body(HttpResponseMessage r) => r.IsSuccessStatusCode ? "" : await r.Content.ReadAsStringAsync();

    /// <summary>Concatenated text of completion stream events (text or delta.content).</summary>
    internal static string StreamText(IEnumerable<JsonElement> events)
    {
        var sb = new StringBuilder();
        foreach (var e in events)
            foreach (var c in e.GetProperty("choices").EnumerateArray())
                if (c.TryGetProperty("text", out var t)) sb.Append(t.GetString());
                else if (c.GetProperty("delta").TryGetProperty("content", out var d)) sb.Append(d.GetString());
        return sb.ToString();
    }

    internal static MediaTypeHeaderValue JsonType => new("application/json");
}
