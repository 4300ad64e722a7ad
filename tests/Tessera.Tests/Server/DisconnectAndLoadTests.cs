using System.Text;
using System.Text.Json;
using NUnit.Framework;
using static Tessera.Tests.Server.ServerFixture;

namespace Tessera.Tests.Server;

/// <summary>A client that goes away stops its request; many concurrent streams each get exactly what they get alone.</summary>
public class DisconnectAndLoadTests
{
    [Test]
    [Ignore("racy: TinyStories' 512-token context can fill (about 0.1 s) before the server sees the disconnect, so the request ends as finished, not cancelled; failed 1 run in 3. Needs a longer-context model in the fixture (issue 5)")]
    public async Task ADisconnectedStreamIsCancelledAndTheNextRequestIsServed()
    {
        var before = RawHttpTests.Metrics(await Http.GetStringAsync("/metrics"));
        const int asked = 100_000; // far more than can run before the abort: only cancellation ends it (the context bounds it too)
        using (var cts = new CancellationTokenSource())
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
            {
                Content = new StringContent($$"""{"prompt":"Once upon a time","max_tokens":{{asked}},"ignore_eos":true,"stream":true}""", Encoding.UTF8, "application/json"),
            };
            // A client of its own that closes the connection on dispose: by default an unfinished response is drained
            // (up to 1 MB) so that the connection can be reused, and the server would never see a disconnect.
            using var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = Address };
            using var r = await client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var reader = new StreamReader(await r.Content.ReadAsStreamAsync(cts.Token));
            Assert.That(await reader.ReadLineAsync(cts.Token), Does.StartWith("data: {"), "the stream started");
            cts.Cancel(); // abort the connection mid-stream
        }
        // The server notices at its next write and stops the request; until then the engine is busy with it.
        var (status, body) = await PostJson("/v1/completions", """{"prompt":"Hi","max_tokens":3,"temperature":0}""");
        Assert.That(status, Is.EqualTo(200), body.ToString());
        // The aborted request's handler records it as it unwinds, which may finish just after the next request;
        // wait for that (the limit is a hang guard, not a timing check).
        var after = RawHttpTests.Metrics(await Http.GetStringAsync("/metrics"));
        for (var until = DateTime.UtcNow.AddSeconds(30);
             after.GetValueOrDefault("tessera_requests_cancelled_total") == before.GetValueOrDefault("tessera_requests_cancelled_total") && DateTime.UtcNow < until;)
        {
            await Task.Delay(20);
            after = RawHttpTests.Metrics(await Http.GetStringAsync("/metrics"));
        }
        Assert.That(after["tessera_requests_cancelled_total"] - before.GetValueOrDefault("tessera_requests_cancelled_total"), Is.EqualTo(1));
        Assert.That(after["tessera_requests_total{endpoint=\"/v1/completions\",status=\"499\"}"] - before.GetValueOrDefault("tessera_requests_total{endpoint=\"/v1/completions\",status=\"499\"}"), Is.EqualTo(1));
        double generated = after["tessera_generated_tokens_total"] - before.GetValueOrDefault("tessera_generated_tokens_total");
        Assert.That(generated - 3, Is.LessThan(Engine.ContextSize - 10), "the aborted request stopped before filling its context");
        Assert.That(after["tessera_requests_running"], Is.EqualTo(0));
        Assert.That(after["tessera_kv_cache_bytes_in_use"], Is.EqualTo(0));
    }

    [Test]
    public async Task SixteenConcurrentStreamsEachMatchTheirSoloRun()
    {
        string[] prompts = ["Once upon a time", "Lily and Ben", "The dog", "Tom had a red ball", "One day", "The sun was hot"];
        var bodies = Enumerable.Range(0, 16).Select(i =>
            $$"""{"prompt":"{{prompts[i % prompts.Length]}}","max_tokens":{{8 + (i * 7) % 41}},"temperature":0.9,"seed":{{100 + i}},"stream":true,"ignore_eos":{{(i % 2 == 0 ? "true" : "false")}}}""").ToList();
        var alone = new List<string>();
        foreach (string b in bodies) alone.Add(StreamText(await PostStream("/v1/completions", b)));
        var together = await Task.WhenAll(bodies.Select(async b => StreamText(await PostStream("/v1/completions", b))));
        for (int i = 0; i < bodies.Count; i++) Assert.That(together[i], Is.EqualTo(alone[i]), bodies[i]);
        Assert.That(alone.Distinct().Count(), Is.GreaterThan(8), "the requests really differ");
    }
}
