using System.Diagnostics;
using Tessera.Backends;
using Tessera.Generation;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Speculation;

namespace Tessera.Benchmarking;

/// <summary>What a verification pass of <paramref name="Rows"/> rows costs: median milliseconds and the ratio to one
/// row (a plain decoding step) at the same position.</summary>
public sealed record VerifyCost(int Rows, double Milliseconds, double RelativeToOneRow);

/// <summary>Plain against speculative greedy decoding over the same prompts, in alternating rounds.</summary>
/// <param name="Label">What ran, e.g. <c>recycle (hot)</c>.</param>
/// <param name="PlainTokensPerSecond">Plain decoding, one figure per round.</param>
/// <param name="SpeculativeTokensPerSecond">Speculative decoding, one figure per round.</param>
/// <param name="Ratio">Speculative ÷ plain tokens/s, per round (each round's pair measured back to back).</param>
/// <param name="TokensPerStep">Generated tokens per target pass, over all prompts of a round (the same every round:
/// decoding is greedy).</param>
/// <param name="DraftedPerStep">Draft tokens verified per pass.</param>
/// <param name="ProposerBytes">Bytes the proposer held.</param>
public sealed record SpeculationBenchResult(string Label, Spread PlainTokensPerSecond, Spread SpeculativeTokensPerSecond,
    Spread Ratio, double TokensPerStep, double DraftedPerStep, long ProposerBytes);

/// <summary>
/// <c>tessera bench --speculate</c>: the verify-cost curve (a pass of n rows against one row, n = 1 .. 128) that the
/// draft budget works from, then plain and speculative greedy decoding over the same prompts in alternating rounds
/// (plain, speculative, then speculative, plain, …) so that machine noise falls on both alike. Token Recycling runs cold (a new
/// successor table per prompt) and hot (one table shared by every prompt, filled by a first untimed pass), as the
/// paper measures both.
/// </summary>
public static class SpeculationBench
{
    /// <summary>Rows of the verify-cost curve (those that fit the context are measured).</summary>
    public static readonly int[] CurveRows = [1, 2, 4, 8, 16, 32, 64, 128];

    /// <summary>Measures the curve on <paramref name="model"/> after <paramref name="position"/> cached positions,
    /// <paramref name="repetitions"/> timed passes per size after a warm-up, sizes interleaved round by round.</summary>
    public static IReadOnlyList<VerifyCost> Curve(LlamaModel model, int position, int repetitions)
    {
        int[] sizes = [.. CurveRows.Where(n => position + n <= model.Config.ContextLength)];
        using var state = model.CreateState(position + sizes[^1], Math.Max(position, sizes[^1]));
        var rng = new Random(7);
        var tokens = new int[Math.Max(position, sizes[^1])];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.Next(model.Config.VocabSize);
        model.Forward(state, tokens.AsSpan(0, position));
        var times = sizes.Select(_ => new List<double>()).ToArray();
        // Each size in a run of passes, as speculation runs them one after another: the first passes after another
        // size pay for caches the other size filled (on a small model its weights sit in cache between steps), so
        // two untimed passes, then the best of three timed ones; rounds repeat the sizes, the median of the rounds.
        for (int round = -1; round < repetitions; round++)      // one untimed round first
            for (int i = 0; i < sizes.Length; i++)
            {
                double best = double.MaxValue;
                for (int pass = 0; pass < 5; pass++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    model.Forward(state, tokens.AsSpan(0, sizes[i]));
                    double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    state.Rewind(position);
                    if (pass >= 2) best = Math.Min(best, ms);
                }
                if (round >= 0) times[i].Add(best);
            }
        double one = Spread.Of(times[0]).Median;
        return [.. sizes.Select((n, i) => new VerifyCost(n, Spread.Of(times[i]).Median, Spread.Of(times[i]).Median / one))];
    }

    /// <summary>Plain against speculative decoding of <paramref name="tokens"/> tokens after each of
    /// <paramref name="prompts"/>, <paramref name="rounds"/> alternating rounds; for Token Recycling both cold and hot.</summary>
    public static IReadOnlyList<SpeculationBenchResult> Compare(LoadedModel m, IReadOnlyList<IReadOnlyList<int>> prompts,
        int tokens, SpeculationOptions speculation, int rounds)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        if (prompts.Count == 0) throw new ArgumentException("no prompts", nameof(prompts));
        int context = prompts.Max(p => p.Count) + tokens + 1;
        var plain = new GenerationOptions { MaxTokens = tokens, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        var variants = new List<(string Label, SpeculationOptions Options)>();
        if (speculation.Method == SpeculationMethod.Recycle && speculation.ProposerFactory is null)
        {
            variants.Add(("recycle (cold)", speculation with { Successors = null }));
            var table = new SuccessorTable(m.Config.VocabSize);
            var hot = speculation with { Successors = table };
            Run(m, prompts, context, plain with { Speculation = hot });  // fills the table: the hot start
            variants.Add(("recycle (hot)", hot));
        }
        else variants.Add((speculation.ProposerFactory is null ? speculation.Method.ToString().ToLowerInvariant() : "custom", speculation));
        var results = new List<SpeculationBenchResult>();
        foreach (var (label, options) in variants)
        {
            var spec = plain with { Speculation = options };
            Run(m, prompts, context, plain);                          // warm-up of both paths
            Run(m, prompts, context, spec);
            var p = new List<double>();
            var s = new List<double>();
            var ratio = new List<double>();
            SpeculationStats total = new();
            for (int r = 0; r < rounds; r++)
            {
                // Alternating order too (plain first in even rounds, speculative first in odd ones): whatever the
                // second run of a pair gains or loses from the first falls on both alike.
                double pt, st;
                SpeculationStats stats;
                if (r % 2 == 0) { (pt, _) = Run(m, prompts, context, plain); (st, stats) = Run(m, prompts, context, spec); }
                else { (st, stats) = Run(m, prompts, context, spec); (pt, _) = Run(m, prompts, context, plain); }
                p.Add(pt);
                s.Add(st);
                ratio.Add(st / pt);
                total = stats;
            }
            results.Add(new SpeculationBenchResult(label, Spread.Of(p), Spread.Of(s), Spread.Of(ratio), total.TokensPerStep,
                total.VerifySteps == 0 ? 0 : (double)total.DraftedTokens / total.VerifySteps, total.ProposerBytes));
        }
        return results;
    }

    // Generates after every prompt; returns tokens/s over all of them and the summed speculation counts.
    private static (double TokensPerSecond, SpeculationStats Stats) Run(LoadedModel m, IReadOnlyList<IReadOnlyList<int>> prompts,
        int context, GenerationOptions options)
    {
        var gen = new TextGenerator(m.Model, m.Tokenizer);
        var sum = new SpeculationStats();
        double seconds = 0;
        int generated = 0;
        using var state = m.Model.CreateState(context);
        foreach (var prompt in prompts)
        {
            state.Rewind(0);
            var stats = new GenerationStats();
            foreach (var _ in gen.Generate(state, prompt, options, stats)) { }
            seconds += stats.GenerationTime.TotalSeconds;
            generated += stats.GeneratedTokens - 1;  // the first token comes from the prompt's pass
            if (stats.Speculation is { } x)
            {
                sum.Method = x.Method;
                sum.VerifySteps += x.VerifySteps;
                sum.DraftedTokens += x.DraftedTokens;
                sum.AcceptedTokens += x.AcceptedTokens;
                sum.GeneratedAfterFirst += x.GeneratedAfterFirst;
                sum.ProposerBytes = x.ProposerBytes;
            }
        }
        return (generated / Math.Max(seconds, 1e-9), sum);
    }
}
