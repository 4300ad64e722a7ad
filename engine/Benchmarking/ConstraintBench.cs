using System.Diagnostics;
using Tessera.Constraints;
using Tessera.Sampling;
using Tessera.Tokenization;

namespace Tessera.Benchmarking;

/// <summary>One way of drawing under a grammar, measured: time per token, rejections and full masks per token.</summary>
public sealed record ConstraintRound(string Mode, int Tokens, double MicrosecondsPerToken, double RejectionsPerToken, double MasksPerToken);

/// <summary>
/// The cost of constrained sampling per token: adaptive rejection sampling (check drawn tokens, mask only after
/// <see cref="Sampler.MaxRejections"/> misses) against masking the whole vocabulary before every draw, in alternating
/// rounds on the same logits source (a model's real logits, or for a tokenizer alone seeded Gaussian logits). Only
/// the sampler's time is counted, not the forward pass. A grammar that completes starts again.
/// </summary>
public static class ConstraintBench
{
    /// <summary>Runs <paramref name="rounds"/> rounds of each mode, <paramref name="tokens"/> tokens per round.</summary>
    /// <param name="tokenizer">The vocabulary the grammar is checked against.</param>
    /// <param name="grammar">The constraint.</param>
    /// <param name="logits">Fills the next logits given the tokens so far (the last one just drawn).</param>
    /// <param name="vocab">Logits per row.</param>
    /// <param name="tokens">Tokens drawn per round.</param>
    /// <param name="rounds">Rounds of each mode, alternating.</param>
    /// <param name="temperature">Sampling temperature (no truncation, OpenAI's defaults).</param>
    public static IReadOnlyList<ConstraintRound> Run(Tokenizer tokenizer, Grammar grammar, Action<List<int>, float[]> logits,
        int vocab, int tokens, int rounds, float temperature = 1)
    {
        var results = new List<ConstraintRound>();
        var row = new float[vocab];
        var given = new float[vocab];
        for (int r = 0; r < rounds; r++)
            foreach (bool mask in new[] { false, true })
            {
                var context = new List<int>();
                long ticks = 0, rejections = 0, masks = 0;
                var options = new SamplingOptions { Temperature = temperature, TopK = 0, TopP = 1, MinP = 0, Seed = (ulong)(r + 1) };
                TokenConstraint Fresh() => new(grammar, tokenizer) { AlwaysMask = mask };
                var c = Fresh();
                var sampler = new Sampler(options, vocab, c);
                for (int i = 0; i < tokens; i++)
                {
                    logits(context, given);
                    given.CopyTo(row, 0);
                    long t0 = Stopwatch.GetTimestamp();
                    int t = sampler.Sample(row);
                    ticks += Stopwatch.GetTimestamp() - t0;
                    context.Add(t);
                    if (c.IsComplete || tokenizer.IsEndOfGeneration(t))
                    {
                        rejections += c.Rejections;
                        masks += c.FullMasks;
                        c = Fresh();
                        sampler = new Sampler(options with { Seed = options.Seed + (ulong)i }, vocab, c);
                    }
                }
                rejections += c.Rejections;
                masks += c.FullMasks;
                results.Add(new ConstraintRound(mask ? "full mask" : "rejection", tokens,
                    ticks * 1e6 / Stopwatch.Frequency / tokens, rejections / (double)tokens, masks / (double)tokens));
            }
        return results;
    }

    /// <summary>Seeded Gaussian logits (standard deviation <paramref name="sigma"/>), one row per step: for a tokenizer
    /// with no model.</summary>
    public static Action<List<int>, float[]> Gaussian(float sigma = 3, int seed = 7) => (context, row) =>
    {
        var rng = new Random(seed + context.Count * 7919 + (context.Count > 0 ? context[^1] : 0));
        for (int i = 0; i < row.Length; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            row[i] = (float)(sigma * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
    };
}
