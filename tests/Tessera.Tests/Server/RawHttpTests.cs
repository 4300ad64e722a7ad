using System.Globalization;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using Tessera.Chat;
using Tessera.Generation;
using Tessera.Sampling;
using static Tessera.Tests.Server.ServerFixture;

namespace Tessera.Tests.Server;

/// <summary>The server over raw HTTP: shapes, results against the library, metrics.</summary>
public class RawHttpTests
{
    private static GenerationOptions Greedy(int n) => new() { MaxTokens = n, Sampling = SamplingOptions.Greedy };

    [Test]
    public async Task HealthAndModels()
    {
        Assert.That(await Http.GetStringAsync("/health"), Is.EqualTo("{\"status\":\"ok\"}"));
        var models = JsonDocument.Parse(await Http.GetStringAsync("/v1/models")).RootElement;
        Assert.That(models.GetProperty("object").GetString(), Is.EqualTo("list"));
        var m = models.GetProperty("data")[0];
        Assert.That(m.GetProperty("id").GetString(), Is.EqualTo(ModelId));
        Assert.That(m.GetProperty("object").GetString(), Is.EqualTo("model"));
    }

    [Test]
    public async Task GreedyCompletionEqualsTheLibrarysResult()
    {
        var expected = await Engine.CompleteAsync("Once upon a time", Greedy(24));
        var (status, body) = await PostJson("/v1/completions",
            """{"model":"my-name","prompt":"Once upon a time","max_tokens":24,"temperature":0}""");
        Assert.That(status, Is.EqualTo(200), body.ToString());
        Assert.That(body.GetProperty("object").GetString(), Is.EqualTo("text_completion"));
        Assert.That(body.GetProperty("id").GetString(), Does.StartWith("cmpl-"));
        Assert.That(body.GetProperty("model").GetString(), Is.EqualTo("my-name"), "the requested model name is echoed");
        Assert.That(body.GetProperty("created").GetInt64(), Is.GreaterThan(1_600_000_000));
        var choice = body.GetProperty("choices")[0];
        Assert.That(choice.GetProperty("index").GetInt32(), Is.EqualTo(0));
        Assert.That(choice.GetProperty("text").GetString(), Is.EqualTo(expected.Text));
        Assert.That(choice.GetProperty("finish_reason").GetString(), Is.EqualTo(expected.FinishReason == FinishReason.MaxTokens ? "length" : "stop"));
        var usage = body.GetProperty("usage");
        Assert.That(usage.GetProperty("prompt_tokens").GetInt32(), Is.EqualTo(expected.PromptTokens));
        Assert.That(usage.GetProperty("completion_tokens").GetInt32(), Is.EqualTo(expected.TokenIds.Count));
        Assert.That(usage.GetProperty("total_tokens").GetInt32(), Is.EqualTo(expected.PromptTokens + expected.TokenIds.Count));
    }

    [Test]
    public async Task StreamedCompletionAddsUpToTheWholeOne()
    {
        var expected = await Engine.CompleteAsync("Lily and Ben", Greedy(30));
        var events = await PostStream("/v1/completions",
            """{"prompt":"Lily and Ben","max_tokens":30,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}""");
        Assert.That(events, Has.Count.GreaterThan(2));
        Assert.That(StreamText(events), Is.EqualTo(expected.Text));
        var id = events[0].GetProperty("id").GetString();
        Assert.That(events.Select(e => e.GetProperty("id").GetString()), Is.All.EqualTo(id), "one id for the whole stream");
        var last = events[^2].GetProperty("choices")[0];
        Assert.That(last.GetProperty("finish_reason").GetString(), Is.EqualTo("length"));
        foreach (var e in events.Take(events.Count - 2))
            Assert.That(e.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind, Is.EqualTo(JsonValueKind.Null));
        var usage = events[^1];
        Assert.That(usage.GetProperty("choices").GetArrayLength(), Is.EqualTo(0));
        Assert.That(usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), Is.EqualTo(30));
    }

    [Test]
    public async Task ChatWholeAndStreamedEqualTheLibrarysReply()
    {
        ChatMessage[] messages = [new("system", "You tell stories."), new("user", "Tell me about a dog.")];
        var reply = new StringBuilder();
        await foreach (var c in Engine.GenerateAsync(messages, Greedy(20))) reply.Append(c.Text);
        const string body = """{"messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":[{"type":"text","text":"Tell me about a dog."}]}],"max_tokens":20,"temperature":0""";
        var (status, whole) = await PostJson("/v1/chat/completions", body + "}");
        Assert.That(status, Is.EqualTo(200), whole.ToString());
        Assert.That(whole.GetProperty("object").GetString(), Is.EqualTo("chat.completion"));
        var message = whole.GetProperty("choices")[0].GetProperty("message");
        Assert.That(message.GetProperty("role").GetString(), Is.EqualTo("assistant"));
        Assert.That(message.GetProperty("content").GetString(), Is.EqualTo(reply.ToString()));
        Assert.That(whole.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), Is.EqualTo(Engine.CountTokens(messages)));

        var events = await PostStream("/v1/chat/completions", body + ""","stream":true}""");
        Assert.That(events[0].GetProperty("object").GetString(), Is.EqualTo("chat.completion.chunk"));
        Assert.That(events[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString(), Is.EqualTo("assistant"));
        Assert.That(StreamText(events), Is.EqualTo(reply.ToString()));
        Assert.That(events[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString(), Is.Not.Null);
    }

    [Test]
    public async Task StopStringEndsWithStop()
    {
        var free = await Engine.CompleteAsync("Once upon a time", Greedy(40));
        // Stop at a word the greedy continuation is known (from the library) to contain.
        string word = free.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3];
        var (status, body) = await PostJson("/v1/completions",
            $$"""{"prompt":"Once upon a time","max_tokens":40,"temperature":0,"stop":["zzzz", "{{word}}"]}""");
        Assert.That(status, Is.EqualTo(200), body.ToString());
        var choice = body.GetProperty("choices")[0];
        Assert.That(choice.GetProperty("finish_reason").GetString(), Is.EqualTo("stop"));
        Assert.That(choice.GetProperty("text").GetString(), Is.EqualTo(free.Text[..free.Text.IndexOf(word, StringComparison.Ordinal)]));
    }

    [Test]
    public async Task SpeculatingRequestsGetThePlainTextAndShowInMetrics()
    {
        const string plain = """{"prompt":"Once upon a time, there was a little girl named Lily. She","max_tokens":40,"temperature":0,"ignore_eos":true}""";
        var (_, a) = await PostJson("/v1/completions", plain);
        string text = a.GetProperty("choices")[0].GetProperty("text").GetString()!;
        foreach (string method in new[] { "lookup", "recycle", "self", "self\",\"tree\":\"dynamic", "none" })
        {
            var (status, b) = await PostJson("/v1/completions", plain.Replace("\"ignore_eos\":true", $"\"ignore_eos\":true,\"speculate\":\"{method}\",\"draft_max\":16"));
            Assert.That(status, Is.EqualTo(200), method);
            Assert.That(b.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(text), method);
        }
        // Seeded sampling too: the same draws with and without speculation.
        const string seeded = """{"prompt":"The dog","max_tokens":30,"temperature":1.0,"top_p":0.9,"seed":77,"ignore_eos":true}""";
        var (_, c) = await PostJson("/v1/completions", seeded);
        var (_, d) = await PostJson("/v1/completions", seeded.Replace("\"seed\":77", "\"seed\":77,\"speculate\":\"recycle\""));
        Assert.That(d.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(c.GetProperty("choices")[0].GetProperty("text").GetString()));
        string metrics = await Http.GetStringAsync("/metrics");
        Assert.That(metrics, Does.Contain("tessera_speculative_drafted_tokens_total"));
        Assert.That(metrics, Does.Contain("tessera_speculative_accepted_tokens_total"));
        Assert.That(Engine.SpeculativeDraftedTokens, Is.GreaterThan(0));
    }

    [Test]
    public async Task LogitBiasBansAndForcesTokens()
    {
        const string body = """{"prompt":"Once upon a time","max_tokens":8,"temperature":0,"ignore_eos":true}""";
        var plain = await Engine.CompleteAsync("Once upon a time", Greedy(8) with { StopAtEndOfGeneration = false });
        int first = plain.TokenIds[0], forced = Engine.Tokenize(" the").Last();
        Assume.That(forced, Is.Not.EqualTo(first));
        var (status, b) = await PostJson("/v1/completions", body.Replace("\"ignore_eos\":true", $"\"ignore_eos\":true,\"logit_bias\":{{\"{forced}\":100}}"));
        Assert.That(status, Is.EqualTo(200));
        Assert.That(b.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(Engine.Detokenize(Enumerable.Repeat(forced, 8).ToArray())), "+100 forces the token");
        var (_, c) = await PostJson("/v1/completions", body.Replace("\"ignore_eos\":true", $"\"ignore_eos\":true,\"logit_bias\":{{\"{first}\":false}}"));
        var banned = await Engine.CompleteAsync("Once upon a time", Greedy(8) with { StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [first] = float.NegativeInfinity } } });
        Assert.That(banned.TokenIds, Does.Not.Contain(first));
        Assert.That(c.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(banned.Text), "false bans it, as the library's -inf");
        Assert.That(banned.Text, Is.Not.EqualTo(plain.Text));
    }

    [Test]
    public async Task TheEndMarkerIsNeverReturned()
    {
        // llama.cpp's greedy continuation of golden p2 is "<|end_story|>" spelled in ordinary tokens, then EOS.
        var g = Tessera.Tests.Golden.GoldenCase.Load("tinystories-656k-q8_0", 2);
        string body = $$"""{"prompt":{{System.Text.Json.JsonSerializer.Serialize(g.Prompt)}},"max_tokens":20,"temperature":0}""";
        var (status, a) = await PostJson("/v1/completions", body);
        Assert.That(status, Is.EqualTo(200));
        Assert.That(a.GetProperty("choices")[0].GetProperty("text").GetString(), Is.Empty);
        Assert.That(a.GetProperty("choices")[0].GetProperty("finish_reason").GetString(), Is.EqualTo("stop"));
        var (_, b) = await PostJson("/v1/completions", body.Replace("\"temperature\":0", "\"temperature\":0,\"special\":true"));
        Assert.That(b.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo("<|end_story|>"));
    }

    [Test]
    public async Task EchoReturnsThePromptFirst()
    {
        const string body = """{"prompt": "Lily and Ben", "max_tokens": 6, "temperature": 0, "echo": true}""";
        var (status, whole) = await PostJson("/v1/completions", body);
        Assert.That(status, Is.EqualTo(200));
        var plain = await Engine.CompleteAsync("Lily and Ben", Greedy(6));
        Assert.That(whole.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo("Lily and Ben" + plain.Text));
        var events = await PostStream("/v1/completions", body.Replace("\"echo\": true", "\"echo\": true, \"stream\": true"));
        string streamed = string.Concat(events.Select(e => e.GetProperty("choices")).Where(c => c.GetArrayLength() > 0).Select(c => c[0].GetProperty("text").GetString()));
        Assert.That(streamed, Is.EqualTo("Lily and Ben" + plain.Text));
    }

    [Test]
    public async Task EchoWithLogprobsScoresThePromptAsTheModelDoes()
    {
        const string prompt = "Lily and Ben went to the park";
        var m = Tessera.Tests.Golden.ModelCache.Get(ModelId + ".gguf");
        var ids = m.Tokenizer.Encode(prompt, m.Tokenizer.AddBosByDefault);
        Assert.That(ids[0], Is.EqualTo(m.Tokenizer.BosId), "the model adds BOS: every text token has a score");
        // The reference: each prompt token's log-softmax given the tokens before it, one fresh prefix at a time.
        var want = new List<double>();
        for (int k = 1; k < ids.Count; k++)
        {
            using var s = m.Model.CreateState(64);
            m.Model.Forward(s, ids.Take(k).ToArray());
            double max = s.Logits.Max(), z = max + Math.Log(s.Logits.Sum(x => Math.Exp(x - max)));
            want.Add(s.Logits[ids[k]] - z);
        }
        foreach (int maxTokens in new[] { 0, 5 })
        {
            var (status, r) = await PostJson("/v1/completions", $$"""{"prompt": "{{prompt}}", "max_tokens": {{maxTokens}}, "temperature": 0, "echo": true, "logprobs": 2}""");
            Assert.That(status, Is.EqualTo(200), r.ToString());
            var choice = r.GetProperty("choices")[0];
            var lp = choice.GetProperty("logprobs");
            var tokens = lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).ToArray();
            var scores = lp.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetDouble()).ToArray();
            Assert.That(tokens, Has.Length.EqualTo(ids.Count - 1 + maxTokens));
            Assert.That(string.Concat(tokens.Take(ids.Count - 1)).TrimStart(), Is.EqualTo(prompt));
            for (int k = 0; k < want.Count; k++) Assert.That(scores[k], Is.EqualTo(want[k]).Within(1e-4), $"prompt token {k + 1}");
            Assert.That(lp.GetProperty("top_logprobs")[0].EnumerateObject().Count(), Is.EqualTo(2));
            // Offsets index the echoed text: the first prompt token at 0, the first generated one right after the prompt.
            var offsets = lp.GetProperty("text_offset").EnumerateArray().Select(t => t.GetInt32()).ToArray();
            Assert.That(offsets[0], Is.EqualTo(0));
            string whole = choice.GetProperty("text").GetString()!;
            for (int k = 1; k < ids.Count - 1; k++)
                Assert.That(whole[offsets[k]..].StartsWith(tokens[k].TrimStart(), StringComparison.Ordinal) || tokens[k].StartsWith(' '), Is.True, $"offset of '{tokens[k]}'");
            if (maxTokens > 0) Assert.That(offsets[ids.Count - 1], Is.EqualTo(prompt.Length));
            Assert.That(choice.GetProperty("text").GetString(), Does.StartWith(prompt));
            if (maxTokens == 0) Assert.That(choice.GetProperty("text").GetString(), Is.EqualTo(prompt));
        }
        // Streamed: the first event echoes the prompt with its scores.
        var events = await PostStream("/v1/completions", $$"""{"prompt": "{{prompt}}", "max_tokens": 3, "temperature": 0, "echo": true, "logprobs": 0, "stream": true}""");
        var head = events.First(e => e.GetProperty("choices").GetArrayLength() > 0).GetProperty("choices")[0];
        Assert.That(head.GetProperty("text").GetString(), Does.StartWith(prompt));
        var firstScores = head.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetDouble()).ToArray();
        Assert.That(firstScores.Take(want.Count), Is.EqualTo(want).Within(1e-4));
    }

    [Test]
    public async Task TokenHealingIsARequestField()
    {
        var (status, body) = await PostJson("/v1/completions", """{"prompt": "Once upon a ti", "max_tokens": 8, "temperature": 0, "token_healing": true}""");
        Assert.That(status, Is.EqualTo(200));
        string text = body.GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.That(text, Is.EqualTo(Tessera.Tests.Generation.TokenHealingTests.Library("Once upon a ti", heal: true)));
        Assert.That(text, Does.StartWith("me"));
    }

    [Test]
    public async Task SeededSamplingIsReproducible()
    {
        const string body = """{"prompt":"The dog","max_tokens":20,"temperature":1.0,"top_p":0.9,"seed":1234}""";
        var (_, a) = await PostJson("/v1/completions", body);
        var (_, b) = await PostJson("/v1/completions", body);
        var lib = await Engine.CompleteAsync("The dog", new GenerationOptions
        {
            MaxTokens = 20, Sampling = new SamplingOptions { Temperature = 1, TopP = 0.9f, TopK = 0, MinP = 0, Seed = 1234 },
        });
        Assert.That(a.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(lib.Text));
        Assert.That(b.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(lib.Text));
    }

    [Test]
    public async Task CompletionLogProbsAreTheGreedyTokensAndTheirAlternatives()
    {
        var (status, body) = await PostJson("/v1/completions", """{"prompt":"Once upon a time","max_tokens":8,"temperature":0,"logprobs":3}""");
        Assert.That(status, Is.EqualTo(200), body.ToString());
        var choice = body.GetProperty("choices")[0];
        var lp = choice.GetProperty("logprobs");
        var tokens = lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).ToList();
        var logprobs = lp.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetDouble()).ToList();
        var tops = lp.GetProperty("top_logprobs").EnumerateArray().ToList();
        Assert.That(tokens, Has.Count.EqualTo(8));
        Assert.That(string.Concat(tokens), Is.EqualTo(choice.GetProperty("text").GetString()));
        for (int i = 0; i < 8; i++)
        {
            var alts = tops[i].EnumerateObject().Select(p => (p.Name, p.Value.GetDouble())).ToList();
            Assert.That(alts, Has.Count.EqualTo(3));
            Assert.That(alts.Select(a => a.Item2), Is.Ordered.Descending);
            // Greedy: the chosen token is the most likely one, so its log-probability is the best alternative's.
            Assert.That(alts[0].Name, Is.EqualTo(tokens[i]));
            Assert.That(logprobs[i], Is.EqualTo(alts[0].Item2));
            Assert.That(logprobs[i], Is.LessThanOrEqualTo(0));
            Assert.That(alts.Sum(a => Math.Exp(a.Item2)), Is.LessThanOrEqualTo(1 + 1e-5));
        }
        Assert.That(lp.GetProperty("text_offset")[0].GetInt32(), Is.EqualTo(0));
    }

    [Test]
    public async Task ChatLogProbsCarryTokenBytes()
    {
        var (status, body) = await PostJson("/v1/chat/completions",
            """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0,"logprobs":true,"top_logprobs":2}""");
        Assert.That(status, Is.EqualTo(200), body.ToString());
        var content = body.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content");
        Assert.That(content.GetArrayLength(), Is.GreaterThan(0));
        foreach (var t in content.EnumerateArray())
        {
            byte[] bytes = t.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32()).ToArray();
            Assert.That(t.GetProperty("token").GetString(), Is.EqualTo(Encoding.UTF8.GetString(bytes)));
            Assert.That(t.GetProperty("logprob").GetDouble(), Is.LessThanOrEqualTo(0));
            Assert.That(t.GetProperty("top_logprobs").GetArrayLength(), Is.EqualTo(2));
            Assert.That(t.GetProperty("top_logprobs")[0].GetProperty("logprob").GetDouble(), Is.EqualTo(t.GetProperty("logprob").GetDouble()));
        }
    }

    [Test]
    public async Task MetricsCountRequestsTokensAndFirstTokens()
    {
        var before = Metrics(await Http.GetStringAsync("/metrics"));
        await PostJson("/v1/completions", """{"prompt":"Tom","max_tokens":7,"temperature":0,"ignore_eos":true}""");
        await PostJson("/v1/completions", """{"prompt":"Tom","temperature":-1}""");
        string text = await Http.GetStringAsync("/metrics");
        var after = Metrics(text);
        double Delta(string k) => after.GetValueOrDefault(k) - before.GetValueOrDefault(k);
        Assert.That(Delta("tessera_requests_total{endpoint=\"/v1/completions\",status=\"200\"}"), Is.EqualTo(1));
        Assert.That(Delta("tessera_requests_total{endpoint=\"/v1/completions\",status=\"400\"}"), Is.EqualTo(1));
        Assert.That(Delta("tessera_generated_tokens_total"), Is.EqualTo(7));
        Assert.That(Delta("tessera_time_to_first_token_seconds_count"), Is.EqualTo(1));
        Assert.That(after["tessera_tokens_per_second"], Is.GreaterThanOrEqualTo(0));
        Assert.That(after["tessera_queue_length"], Is.EqualTo(0));
        Assert.That(after["tessera_requests_running"], Is.EqualTo(0));
        Assert.That(after["tessera_kv_cache_bytes_in_use"], Is.EqualTo(0));
        Assert.That(text, Does.Contain("# TYPE tessera_time_to_first_token_seconds histogram"));
        Assert.That(after["tessera_time_to_first_token_seconds_bucket{le=\"+Inf\"}"], Is.EqualTo(after["tessera_time_to_first_token_seconds_count"]));
    }

    [Test]
    public async Task CautiousRequestsDrawWhatTheLibraryDrawsAndMetricsCountTheTrials()
    {
        const string body = """{"prompt":"Once upon a time","max_tokens":40,"temperature":1,"seed":8,"cautious":true,"cautious_trials":6,"ignore_eos":true}""";
        var before = Metrics(await Http.GetStringAsync("/metrics"));
        var (status, r) = await PostJson("/v1/completions", body);
        var after = Metrics(await Http.GetStringAsync("/metrics"));
        Assert.That(status, Is.EqualTo(200));
        double Delta(string name) => after[name] - before[name];
        double steps = Delta("tessera_cautious_uncertain_steps_total"), trials = Delta("tessera_cautious_trials_total");
        Assert.That(steps, Is.GreaterThan(0));
        Assert.That(trials, Is.GreaterThanOrEqualTo(2 * steps).And.LessThanOrEqualTo(6 * steps));
        Assert.That(Delta("tessera_cautious_extra_forward_passes_total"), Is.GreaterThan(0));
        var lib = await Engine.CompleteAsync("Once upon a time", new GenerationOptions
        {
            MaxTokens = 40, StopAtEndOfGeneration = false, Cautious = new CautiousOptions { MaxTrials = 6 },
            Sampling = new SamplingOptions { Temperature = 1, TopP = 1, TopK = 0, MinP = 0, Seed = 8 },
        });
        Assert.That(r.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(lib.Text));

        foreach (var (bad, param, says) in new[]
        {
            ("""{"prompt":"Once","cautious":true,"temperature":0}""", "cautious", "needs sampling"),
            ("""{"prompt":"Once","cautious":true,"cautious_trials":40}""", "cautious_trials", "cautious_trials 40"),
            ("""{"prompt":"Once","cautious_trials":4}""", "cautious_trials", "needs cautious: true"),
            ("""{"prompt":"Once","cautious":true,"logprobs":2}""", "cautious", "logprobs"),
        })
        {
            var (code, err) = await PostJson("/v1/completions", bad);
            Assert.That(code, Is.EqualTo(400), bad);
            Assert.That(err.GetProperty("error").GetProperty("param").GetString(), Is.EqualTo(param), bad);
            Assert.That(err.GetProperty("error").GetProperty("message").GetString(), Does.Contain(says), bad);
        }
    }

    [Test]
    public async Task KvBudgetAndPruningFieldsGiveWhatTheLibraryGivesAndBadOnesA400()
    {
        const string body = """{"prompt":"Once upon a time","max_tokens":60,"temperature":0,"kv_budget":20,"kv_policy":"h2o","kv_sinks":2,"ignore_eos":true}""";
        var before = Metrics(await Http.GetStringAsync("/metrics"));
        var (status, r) = await PostJson("/v1/completions", body);
        var after = Metrics(await Http.GetStringAsync("/metrics"));
        Assert.That(status, Is.EqualTo(200));
        var lib = await Engine.CompleteAsync("Once upon a time", new GenerationOptions
        {
            MaxTokens = 60, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy,
            KvBudget = new Tessera.Kv.KvBudgetOptions { Budget = 20, Policy = Tessera.Kv.KvPolicy.H2O, Sinks = 2 },
        });
        Assert.That(r.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(lib.Text));
        Assert.That(after["tessera_kv_dropped_positions_total"] - before["tessera_kv_dropped_positions_total"], Is.GreaterThan(30));

        const string pruned = """{"prompt":"Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog.","max_tokens":20,"temperature":0,"prefill_pruning":"lazyllm","keep":0.1,"ignore_eos":true}""";
        (status, r) = await PostJson("/v1/completions", pruned);
        Assert.That(status, Is.EqualTo(200));
        var libPruned = await Engine.CompleteAsync("Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog.", new GenerationOptions
        {
            MaxTokens = 20, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy, PrefillPruning = new Tessera.Pruning.PrefillPruningOptions { Keep = 0.1 },
        });
        Assert.That(r.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(libPruned.Text));
        var unpruned = await Engine.CompleteAsync("Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog.", new GenerationOptions
        {
            MaxTokens = 20, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy,
        });
        Assert.That(libPruned.Text, Is.Not.EqualTo(unpruned.Text), "the pruning took effect");

        foreach (var (bad, param, says) in new[]
        {
            ("""{"prompt":"Once","kv_budget":3}""", "kv_budget", "kv_budget 3: must be at least kv_sinks 4 + 1"),
            ("""{"prompt":"Once","kv_budget":32,"kv_policy":"lru"}""", "kv_policy", "kv_policy 'lru': unknown"),
            ("""{"prompt":"Once","kv_policy":"h2o"}""", "kv_policy", "needs kv_budget"),
            ("""{"prompt":"Once","kv_budget":32,"n":2,"temperature":1}""", "kv_budget", "several choices"),
            ("""{"prompt":"Once","prefill_pruning":"lazyllm","keep":1.5}""", "keep", "--keep 1.5: must be in (0, 1]"),
            ("""{"prompt":"Once","prefill_pruning":"magic"}""", "prefill_pruning", "unknown (lazyllm, spatten)"),
            ("""{"prompt":"Once","keep":0.5}""", "keep", "keep needs prefill_pruning"),
            ("""{"prompt":"Once","prefill_pruning":"spatten","kv_budget":64}""", "prefill_pruning", "not together with --kv-budget"),
        })
        {
            var (code, err) = await PostJson("/v1/completions", bad);
            Assert.That(code, Is.EqualTo(400), bad);
            Assert.That(err.GetProperty("error").GetProperty("param").GetString(), Is.EqualTo(param), bad);
            Assert.That(err.GetProperty("error").GetProperty("message").GetString(), Does.Contain(says), bad);
        }
        Assert.That((await Http.GetAsync("/health")).IsSuccessStatusCode, "still serving");
    }

    [Test]
    public async Task NChoicesComputeThePromptOnceEachWithItsSeed()
    {
        const string body = """{"prompt":"The little bird","max_tokens":10,"temperature":1,"seed":21,"n":3,"logprobs":1,"ignore_eos":true}""";
        var before = Metrics(await Http.GetStringAsync("/metrics"));
        var (status, r) = await PostJson("/v1/completions", body);
        var after = Metrics(await Http.GetStringAsync("/metrics"));
        Assert.That(status, Is.EqualTo(200));
        var lib = await Engine.CompleteChoicesAsync("The little bird", new GenerationOptions
        {
            MaxTokens = 10, Choices = 3, StopAtEndOfGeneration = false,
            Sampling = new SamplingOptions { Temperature = 1, TopP = 1, TopK = 0, MinP = 0, Seed = 21 },
        });
        var choices = r.GetProperty("choices").EnumerateArray().ToArray();
        Assert.That(choices.Select(c => c.GetProperty("index").GetInt32()), Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.That(choices.Select(c => c.GetProperty("text").GetString()), Is.EqualTo(lib.Select(l => l.Text)));
        Assert.That(choices.Select(c => c.GetProperty("logprobs").GetProperty("tokens").GetArrayLength()), Has.All.EqualTo(10), "logprobs for every choice");
        Assert.That(r.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), Is.EqualTo(30), "usage counts every choice's tokens");
        int prompt = Engine.CountTokens("The little bird");
        Assert.That(after["tessera_prompt_tokens_computed_total"] - before["tessera_prompt_tokens_computed_total"], Is.EqualTo(prompt), "computed once");
        Assert.That(after["tessera_forked_choices_total"] - before["tessera_forked_choices_total"], Is.EqualTo(2));

        var (over, e) = await PostJson("/v1/completions", body.Replace("\"n\":3", "\"n\":16").Replace("max_tokens\":10", "max_tokens\":2"));
        Assert.That(over, Is.EqualTo(200), "16 choices fit --parallel 64");
        Assert.That(e.GetProperty("choices").GetArrayLength(), Is.EqualTo(16));
    }

    /// <summary>Parses Prometheus text: series (name with labels) to value; checks each line's shape.</summary>
    internal static Dictionary<string, double> Metrics(string text)
    {
        var d = new Dictionary<string, double>();
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#')) { Assert.That(line, Does.Match("^# (HELP|TYPE) tessera_")); continue; }
            int space = line.LastIndexOf(' ');
            d[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }
        return d;
    }
}
