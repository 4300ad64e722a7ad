using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Tessera.Api;

namespace Tessera.Cli.Server;

/// <summary>Counters for <c>GET /metrics</c>, written in the Prometheus text format (version 0.0.4).</summary>
internal sealed class ServerMetrics(InferenceEngine engine)
{
    private static readonly double[] TtftBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private const int RateWindowSeconds = 10;

    private readonly ConcurrentDictionary<(string Endpoint, int Status), long> _requests = new();
    private readonly Lock _lock = new();
    private readonly long[] _ttftCounts = new long[TtftBuckets.Length];
    private readonly long[] _tokensPerSecond = new long[RateWindowSeconds];   // ring of one-second buckets
    private readonly long[] _bucketSecond = new long[RateWindowSeconds];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private double _ttftSum;
    private long _ttftCount, _generated, _prompt, _cancelled;

    public void Request(string endpoint, int status) => _requests.AddOrUpdate((endpoint, status), 1, (_, v) => v + 1);

    public void PromptTokens(int n) => Interlocked.Add(ref _prompt, n);

    public void Cancelled() => Interlocked.Increment(ref _cancelled);

    public void FirstToken(TimeSpan sinceArrival)
    {
        double s = sinceArrival.TotalSeconds;
        lock (_lock)
        {
            for (int i = 0; i < TtftBuckets.Length; i++) if (s <= TtftBuckets[i]) _ttftCounts[i]++;
            _ttftSum += s;
            _ttftCount++;
        }
    }

    public void Generated(int tokens)
    {
        if (tokens == 0) return;
        Interlocked.Add(ref _generated, tokens);
        long second = (long)_clock.Elapsed.TotalSeconds;
        lock (_lock)
        {
            int slot = (int)(second % RateWindowSeconds);
            if (_bucketSecond[slot] != second) { _bucketSecond[slot] = second; _tokensPerSecond[slot] = 0; }
            _tokensPerSecond[slot] += tokens;
        }
    }

    /// <summary>Generated tokens per second over the last whole seconds of the window (all requests together).</summary>
    private double TokensPerSecond()
    {
        long now = (long)_clock.Elapsed.TotalSeconds;
        long sum = 0;
        lock (_lock)
            for (int i = 0; i < RateWindowSeconds; i++)
                if (now - _bucketSecond[i] is > 0 and <= RateWindowSeconds) sum += _tokensPerSecond[i];
        return sum / (double)RateWindowSeconds;
    }

    public string Render()
    {
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        Header(sb, "tessera_requests_total", "counter", "HTTP requests by endpoint and status code");
        foreach (var ((endpoint, status), n) in _requests.OrderBy(kv => kv.Key.Endpoint, StringComparer.Ordinal).ThenBy(kv => kv.Key.Status))
            sb.Append(ci, $"tessera_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}\n");
        Metric(sb, "tessera_requests_cancelled_total", "counter", "generation requests stopped because the client disconnected", Interlocked.Read(ref _cancelled));
        Metric(sb, "tessera_prompt_tokens_total", "counter", "prompt tokens of accepted generation requests", Interlocked.Read(ref _prompt));
        Metric(sb, "tessera_generated_tokens_total", "counter", "tokens generated", Interlocked.Read(ref _generated));
        Metric(sb, "tessera_tokens_per_second", "gauge", $"tokens generated per second, all requests, averaged over the last {RateWindowSeconds} s", TokensPerSecond());
        Metric(sb, "tessera_queue_length", "gauge", "requests accepted and waiting for their turn (preempted ones included)", engine.QueueLength);
        Metric(sb, "tessera_requests_running", "gauge", "requests generating now", engine.RunningRequests);
        Metric(sb, "tessera_kv_blocks_in_use", "gauge", "paged KV cache blocks held by running requests", engine.KvBlocksInUse);
        Metric(sb, "tessera_kv_blocks_total", "gauge", "paged KV cache blocks", engine.KvBlocksTotal);
        Metric(sb, "tessera_kv_cache_bytes_in_use", "gauge", "bytes of KV cache held by running requests", engine.KvCacheBytesInUse);
        Metric(sb, "tessera_preemptions_total", "counter", "requests preempted (blocks freed, recomputed later) because the KV cache was full", engine.Preemptions);
        Metric(sb, "tessera_prompt_tokens_computed_total", "counter", "prompt positions run through the model (a request's n choices compute their prompt once)", engine.PromptTokensComputed);
        Metric(sb, "tessera_forked_choices_total", "counter", "choices (n > 1) started from another choice's cached prompt", engine.Forks);
        Metric(sb, "tessera_kv_dropped_positions_total", "counter", "cached positions that KV budgets (kv_budget) dropped", engine.KvDroppedPositions);
        Metric(sb, "tessera_prefix_cache_hit_tokens_total", "counter", "prompt tokens served from cached KV blocks instead of computed", engine.PrefixHitTokens);
        Metric(sb, "tessera_speculative_drafted_tokens_total", "counter", "draft tokens verified for speculating requests", engine.SpeculativeDraftedTokens);
        Metric(sb, "tessera_speculative_accepted_tokens_total", "counter", "draft tokens accepted (each a forward pass saved)", engine.SpeculativeAcceptedTokens);
        var cautious = engine.Cautious;
        Metric(sb, "tessera_cautious_uncertain_steps_total", "counter", "Cautious NTP steps whose entropy called for several trials", cautious.UncertainSteps);
        Metric(sb, "tessera_cautious_trials_total", "counter", "Cautious NTP trial continuations sampled", cautious.Trials);
        Metric(sb, "tessera_cautious_extra_forward_passes_total", "counter", "Cautious NTP forward passes beyond one per generated token", cautious.ExtraForwardPasses);
        Header(sb, "tessera_time_to_first_token_seconds", "histogram", "from request arrival to the first generated token");
        lock (_lock)
        {
            for (int i = 0; i < TtftBuckets.Length; i++)
                sb.Append(ci, $"tessera_time_to_first_token_seconds_bucket{{le=\"{TtftBuckets[i]}\"}} {_ttftCounts[i]}\n");
            sb.Append(ci, $"tessera_time_to_first_token_seconds_bucket{{le=\"+Inf\"}} {_ttftCount}\n");
            sb.Append(ci, $"tessera_time_to_first_token_seconds_sum {_ttftSum}\n");
            sb.Append(ci, $"tessera_time_to_first_token_seconds_count {_ttftCount}\n");
        }
        return sb.ToString();
    }

    private static void Header(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Metric(StringBuilder sb, string name, string type, string help, double value)
    {
        Header(sb, name, type, help);
        sb.Append(name).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
    }
}
