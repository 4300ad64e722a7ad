using System.Diagnostics;
using System.Numerics.Tensors;
using Tessera.Kv;
using Tessera.Model;

namespace Tessera.Benchmarking;

/// <summary>One configuration of <see cref="KvBudgetBench"/>: decode speed after the prompt, its ratio to the full
/// cache measured in the same rounds, and the cache's peak size.</summary>
/// <param name="Label">e.g. <c>h2o 50%</c>, <c>full</c>, <c>h2o scores only</c> (a budget never reached: the cost
/// of the score sums alone).</param>
/// <param name="TokensPerSecond">Decode tokens/s, one figure per round.</param>
/// <param name="RatioToFull">This ÷ the full cache's tokens/s, per round (measured back to back).</param>
/// <param name="PrefillMilliseconds">The prompt's time (prefill and the compression after it), one figure per round.</param>
/// <param name="DecodePositions">The most positions a decode step attended to (the cache plus its row).</param>
/// <param name="PeakPositions">The most positions cached at once, the prompt's chunks (256 rows) included.</param>
/// <param name="BytesPerPosition">Keys and values of one position (F16, every layer).</param>
public sealed record KvBudgetBenchResult(string Label, Spread TokensPerSecond, Spread RatioToFull, Spread PrefillMilliseconds,
    int DecodePositions, int PeakPositions, long BytesPerPosition);

/// <summary>
/// <c>tessera bench --kv-budget-bench</c>: a prompt of random tokens, then greedy single-token decoding, with the full
/// cache, with the score sums on but a budget never reached (their cost alone), and with each policy at 25%, 50% and
/// 100% of the prompt. Configurations alternate within each round (forward in even rounds, backward in odd ones), so
/// machine noise falls on all alike; each ratio is taken within a round.
/// </summary>
public static class KvBudgetBench
{
    /// <summary>Runs the sweep on <paramref name="model"/>.</summary>
    public static IReadOnlyList<KvBudgetBenchResult> Run(LlamaModel model, int promptLength, int generate, int rounds,
        IReadOnlyList<KvPolicy> policies, Action<string>? progress = null)
    {
        var c = model.Config;
        if (promptLength + generate > c.ContextLength)
            throw new ArgumentException($"-p {promptLength} + -n {generate} pass the model's context of {c.ContextLength}");
        new KvBudgetOptions { Budget = 8 }.CheckModel(c);   // before any round runs
        var configs = new List<(string Label, KvBudgetOptions? Budget)> { ("full", null) };
        if (model.Backend.ComputesAttentionScores)
            configs.Add(("h2o scores only", new KvBudgetOptions { Budget = promptLength + generate + 1, Policy = KvPolicy.H2O }));
        foreach (var p in policies)
        {
            if (new KvBudgetOptions { Budget = 8, Policy = p }.NeedsAttentionScores && !model.Backend.ComputesAttentionScores) continue;
            foreach (int pct in new[] { 100, 50, 25 })
                configs.Add(($"{KvBudgetOptions.NameOf(p)} {pct}%", new KvBudgetOptions { Budget = Math.Max(8, promptLength * pct / 100), Policy = p }));
        }
        var rng = new Random(11);
        var prompt = new int[promptLength];
        for (int i = 0; i < prompt.Length; i++) prompt[i] = rng.Next(c.VocabSize);
        using var state = model.CreateState(promptLength + generate + 1, Math.Min(promptLength, 256));
        var tps = configs.Select(_ => new List<double>()).ToArray();
        var prefill = configs.Select(_ => new List<double>()).ToArray();
        var ratio = configs.Select(_ => new List<double>()).ToArray();
        var peak = new int[configs.Count];
        var decodePeak = new int[configs.Count];
        var one = new int[1];
        for (int round = -1; round < rounds; round++)   // round -1: warm-up, untimed
        {
            var roundTps = new double[configs.Count];
            for (int j = 0; j < configs.Count; j++)
            {
                int i = round % 2 == 0 ? j : configs.Count - 1 - j;
                progress?.Invoke($"round {round + 1}/{rounds}: {configs[i].Label}");
                state.Rewind(0);   // nothing dropped now: the budget may change
                state.UseKvBudget(configs[i].Budget);
                if (state.KvPolicy is { } b) { b.Horizon = generate; b.PromptEnd = promptLength; }
                long t0 = Stopwatch.GetTimestamp();
                model.Forward(state, prompt);
                double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                int maxCached = 0;
                long t1 = Stopwatch.GetTimestamp();
                for (int k = 0; k < generate; k++)
                {
                    one[0] = TensorPrimitives.IndexOfMax<float>(state.Logits);
                    model.Forward(state, one);
                    maxCached = Math.Max(maxCached, state.Cached);
                }
                decodePeak[i] = Math.Min(maxCached + 1, state.KvPolicy?.Options.Budget ?? int.MaxValue);
                double seconds = Stopwatch.GetElapsedTime(t1).TotalSeconds;
                peak[i] = state.KvPolicy?.PeakCount ?? state.Cached;
                if (round < 0) continue;
                roundTps[i] = generate / seconds;
                tps[i].Add(roundTps[i]);
                prefill[i].Add(ms);
            }
            if (round >= 0)
                for (int i = 0; i < configs.Count; i++) ratio[i].Add(roundTps[i] / roundTps[0]);
        }
        state.Rewind(0);
        state.UseKvBudget(null);
        long perPosition = c.KvBytesPerPosition;
        return [.. configs.Select((cfg, i) => new KvBudgetBenchResult(cfg.Label, Spread.Of(tps[i]), Spread.Of(ratio[i]), Spread.Of(prefill[i]), decodePeak[i], peak[i], perPosition))];
    }
}
