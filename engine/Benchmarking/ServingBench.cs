using System.Diagnostics;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Sampling;

namespace Tessera.Benchmarking;

/// <summary>Throughput of the continuous-batching engine at one concurrency level.</summary>
/// <param name="Concurrency">Requests started together.</param>
/// <param name="PromptTokens">Prompt tokens of each request.</param>
/// <param name="GeneratedTokens">Tokens each request generated.</param>
/// <param name="Seconds">Wall time from the start of all requests to the end of the last.</param>
/// <param name="AggregateTokensPerSecond">Generated tokens of all requests over <paramref name="Seconds"/> (prefill included).</param>
/// <param name="DecodeTokensPerSecond">Tokens generated after every request had its first token, over that span:
/// the steady decode rate with all requests in the batch.</param>
/// <param name="MeanTimeToFirstToken">Mean, over the requests, of the time from the common start to their first token.</param>
/// <param name="MaxTimeToFirstToken">The longest of those.</param>
public sealed record ServingBenchResult(int Concurrency, int PromptTokens, int GeneratedTokens, double Seconds,
    double AggregateTokensPerSecond, double DecodeTokensPerSecond, TimeSpan MeanTimeToFirstToken, TimeSpan MaxTimeToFirstToken);

/// <summary>
/// Serving throughput: N requests of random prompt tokens start at once (each prompt distinct, so no prefix reuse)
/// and generate a fixed number of tokens (end-of-generation ignored); the engine batches them in each step. Run for
/// several N, the ratio of decode rates shows what reading the weights once per step for all sequences buys.
/// </summary>
public static class ServingBench
{
    /// <summary>Loads <paramref name="modelPath"/> once on <paramref name="backend"/> (the CPU when null; the caller
    /// disposes it) and measures each level of <paramref name="concurrency"/> after an untimed warm-up.</summary>
    /// <exception cref="ArgumentException">A level, length or count is out of range.</exception>
    public static IReadOnlyList<ServingBenchResult> Run(string modelPath, IReadOnlyList<int> concurrency, int promptTokens,
        int generateTokens, Action<string>? log = null, Backends.IBackend? backend = null)
    {
        if (concurrency.Count == 0 || concurrency.Any(c => c < 1))
            throw new ArgumentException("--concurrency: give one or more levels of 1 or more, e.g. 1,4,16,64", nameof(concurrency));
        if (promptTokens < 1) throw new ArgumentException($"prompt length {promptTokens}: must be 1 or more", nameof(promptTokens));
        if (generateTokens < 1) throw new ArgumentException($"--gen {generateTokens}: must be 1 or more", nameof(generateTokens));
        int max = concurrency.Max();
        int context = promptTokens + generateTokens + 16;
        using var engine = InferenceEngine.LoadAsync(modelPath, backend, new EngineOptions
        {
            ContextSize = context,
            MaxSequences = max,
            MaxTokensPerStep = Math.Max(256, max),
        }).GetAwaiter().GetResult();
        if (context > engine.Config.ContextLength)
            throw new ArgumentException($"prompt {promptTokens} + {generateTokens} generated tokens exceed the model's context of {engine.Config.ContextLength}");
        var rng = new Random(1234);
        // Warm-up long enough for JIT tiering and first-touch page faults (weights, cache, buffers) to be over: with
        // 8 tokens only, the first timed level ran at about half speed.
        log?.Invoke("warm-up");
        Measure(engine, 1, promptTokens, generateTokens, rng);
        Measure(engine, Math.Min(max, 4), promptTokens, generateTokens, rng);
        var results = new List<ServingBenchResult>();
        foreach (int n in concurrency)
        {
            log?.Invoke($"concurrency {n}");
            results.Add(Measure(engine, n, promptTokens, generateTokens, rng));
        }
        return results;
    }

    private static ServingBenchResult Measure(InferenceEngine engine, int n, int promptTokens, int generate, Random rng)
    {
        int vocab = engine.Config.VocabSize;
        var options = new GenerationOptions { MaxTokens = generate, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        var prompts = Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, promptTokens).Select(_ => rng.Next(3, vocab)).ToArray()).ToArray();
        var stamps = new long[n][];
        var sw = Stopwatch.StartNew();
        var tasks = prompts.Select((p, i) => Task.Run(async () =>
        {
            var t = stamps[i] = new long[generate];
            int k = 0;
            var seq = engine.Scheduler.Submit(p, options, default);
            await foreach (var chunk in seq.Output.ReadAllAsync().ConfigureAwait(false))
                if (chunk.TokenIds.Count > 0 && k < t.Length) t[k++] = sw.ElapsedTicks;
            if (k != generate) throw new InvalidOperationException($"request {i} generated {k} of {generate} tokens");
        })).ToArray();
        Task.WaitAll(tasks);
        double seconds = sw.Elapsed.TotalSeconds;
        double tick = 1.0 / Stopwatch.Frequency;
        long allFirst = stamps.Max(t => t[0]);
        long end = stamps.Max(t => t[^1]);
        long after = stamps.Sum(t => (long)t.Count(x => x > allFirst));
        double decode = end > allFirst ? after / ((end - allFirst) * tick) : double.NaN;
        var ttft = stamps.Select(t => t[0] * tick).ToArray();
        return new ServingBenchResult(n, promptTokens, generate, seconds, n * (double)generate / seconds, decode,
            TimeSpan.FromSeconds(ttft.Average()), TimeSpan.FromSeconds(ttft.Max()));
    }
}
