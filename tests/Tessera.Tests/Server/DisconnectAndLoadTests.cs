using System.Text;
using System.Text.Json;
using NUnit.Framework;
using Tessera.Api;
using Tessera.Cli.Server;
using static Tessera.Tests.Server.ServerFixture;

namespace Tessera.Tests.Server;

/// <summary>A client that goes away stops its request and frees its KV blocks; many concurrent streams each get
/// exactly what they get alone, also when the KV cache is too small for all of them at once.</summary>
public class DisconnectAndLoadTests
{
    private static double Delta(Dictionary<string, double> before, Dictionary<string, double> after, string key) =>
        after.GetValueOrDefault(key) - before.GetValueOrDefault(key);

    [Test]
    public async Task ADisconnectedStreamIsCancelledItsBlocksFreedAndTheNextRequestIsServed()
    {
        var before = RawHttpTests.Metrics(await Http.GetStringAsync("/metrics"));
        try
        {
            using (var cts = new CancellationTokenSource())
            {
                using var req = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
                {
                    Content = new StringContent("""{"prompt":"Once upon a time","max_tokens":400,"ignore_eos":true,"stream":true}""", Encoding.UTF8, "application/json"),
                };
                // A client of its own that closes the connection on dispose: by default an unfinished response is
                // drained (up to 1 MB) so that the connection can be reused, and the server would never see a disconnect.
                using var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = Address };
                using var r = await client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
                using var reader = new StreamReader(await r.Content.ReadAsStreamAsync(cts.Token));
                Assert.That(await reader.ReadLineAsync(cts.Token), Does.StartWith("data: {"), "the stream started");
                // Hold the scheduler (test hook) so the request cannot run to its end before the disconnect is seen:
                // without this the race against max_tokens decides between "cancelled" and "finished".
                Engine.Scheduler.Paused = true;
                Assert.That(Engine.KvBlocksInUse, Is.GreaterThan(0), "the stream holds blocks");
                cts.Cancel(); // abort the connection mid-stream
            }
            // Kestrel sees the connection close, the handler unwinds and the scheduler frees the sequence even while
            // paused. The limit is a hang guard, not a timing check.
            var after = RawHttpTests.Metrics(await Http.GetStringAsync("/metrics"));
            for (var until = DateTime.UtcNow.AddSeconds(30);
                 (Delta(before, after, "tessera_requests_cancelled_total") < 1 || after["tessera_kv_blocks_in_use"] > 0) && DateTime.UtcNow < until;)
            {
                await Task.Delay(20);
                after = RawHttpTests.Metrics(await Http.GetStringAsync("/metrics"));
            }
            Assert.That(Delta(before, after, "tessera_requests_cancelled_total"), Is.EqualTo(1));
            Assert.That(Delta(before, after, "tessera_requests_total{endpoint=\"/v1/completions\",status=\"499\"}"), Is.EqualTo(1));
            Assert.That(after["tessera_kv_blocks_in_use"], Is.EqualTo(0), "the aborted request's blocks were freed");
            Assert.That(after["tessera_kv_cache_bytes_in_use"], Is.EqualTo(0));
            Assert.That(after["tessera_requests_running"], Is.EqualTo(0));
            Assert.That(Delta(before, after, "tessera_generated_tokens_total"), Is.LessThan(400), "it stopped before its max_tokens");
        }
        finally { Engine.Scheduler.Paused = false; }
        var (status, body) = await PostJson("/v1/completions", """{"prompt":"Hi","max_tokens":3,"temperature":0}""");
        Assert.That(status, Is.EqualTo(200), body.ToString());
    }

    [Test]
    public async Task SixtyFourConcurrentStreamsOfMixedLengthsEachMatchTheirSoloRun()
    {
        var words = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "story.txt")).Split(' ', '\n');
        var bodies = Enumerable.Range(0, 64).Select(i =>
        {
            string prompt = JsonSerializer.Serialize(string.Join(' ', words.Skip(i * 5).Take(2 + (i * 17) % 90)));
            return $$"""{"prompt":{{prompt}},"max_tokens":{{4 + (i * 37) % 120}},"temperature":0.8,"seed":{{500 + i}},"stream":true,"ignore_eos":{{(i % 2 == 0 ? "true" : "false")}}}""";
        }).ToList();
        var alone = new List<string>();
        foreach (string b in bodies) alone.Add(StreamText(await PostStream("/v1/completions", b)));
        var together = await Task.WhenAll(bodies.Select(async b => StreamText(await PostStream("/v1/completions", b))));
        for (int i = 0; i < bodies.Count; i++) Assert.That(together[i], Is.EqualTo(alone[i]), bodies[i]);
        Assert.That(alone.Distinct().Count(), Is.GreaterThan(50), "the requests really differ");
        var m = RawHttpTests.Metrics(await Http.GetStringAsync("/metrics"));
        Assert.That(m["tessera_kv_blocks_in_use"], Is.EqualTo(0), "every block came back");
        Assert.That(m["tessera_queue_length"], Is.EqualTo(0));
    }

    [Test]
    public async Task WithATinyKvCacheStreamsArePreemptedYetAllCompleteCorrectlyAndTheServerKeepsServing()
    {
        // 8 blocks of 16 positions: one context of 128. Six streams growing to ~110 positions each cannot all fit.
        using var engine = await InferenceEngine.LoadAsync(SharedData.Model(ModelId + ".gguf"),
            new EngineOptions { ContextSize = 128, MaxSequences = 6, KvBlocks = 8 });
        await using var server = await TesseraServer.StartAsync(engine, new ServerOptions("127.0.0.1", 0, ModelId));
        using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(120) };
        string[] prompts = ["Once upon a time, there was a little boy named Tim", "Lily and Ben went to the park to play", "The dog ran", "Tom had a red ball and a big blue kite", "One day", "The sun was hot and the sky was blue"];
        var bodies = prompts.Select((p, i) => $$"""{"prompt":"{{p}}","max_tokens":90,"temperature":0.7,"seed":{{i}},"stream":true,"ignore_eos":true}""").ToList();
        var alone = new List<string>();
        foreach (string b in bodies) alone.Add(StreamText(await PostStream(http, "/v1/completions", b)));
        var together = await Task.WhenAll(bodies.Select(async b => StreamText(await PostStream(http, "/v1/completions", b))));
        for (int i = 0; i < bodies.Count; i++) Assert.That(together[i], Is.EqualTo(alone[i]), bodies[i]);
        var m = RawHttpTests.Metrics(await http.GetStringAsync("/metrics"));
        Assert.That(m["tessera_preemptions_total"], Is.GreaterThan(0), "the cache ran out, so streams were preempted");
        Assert.That(m["tessera_kv_blocks_total"], Is.EqualTo(8));
        Assert.That(m["tessera_kv_blocks_in_use"], Is.EqualTo(0), "every block came back");
        var (status, body) = await PostJsonTo(http, """{"prompt":"Hi","max_tokens":3,"temperature":0}""");
        Assert.That(status, Is.EqualTo(200), body);
    }

    private static async Task<(int, string)> PostJsonTo(HttpClient http, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var r = await http.PostAsync("/v1/completions", content);
        return ((int)r.StatusCode, await r.Content.ReadAsStringAsync());
    }
}
