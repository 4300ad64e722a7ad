using System.Diagnostics;
using System.Numerics.Tensors;
using Tessera.Model;
using Tessera.Pruning;

namespace Tessera.Benchmarking;

/// <summary>Time to first token of one prompt length with and without prompt pruning (<see cref="PruningBench"/>).</summary>
/// <param name="PromptTokens">Prompt length.</param>
/// <param name="FullMilliseconds">The whole prompt through every layer and the first token, per round.</param>
/// <param name="PrunedMilliseconds">The same under pruning, per round.</param>
/// <param name="Speedup">Full ÷ pruned time, per round (each pair measured back to back).</param>
/// <param name="ComputedShare">Row-layers the pruned prompt ran, over rows × layers.</param>
public sealed record PruningBenchResult(int PromptTokens, Spread FullMilliseconds, Spread PrunedMilliseconds, Spread Speedup, double ComputedShare);

/// <summary>
/// <c>tessera bench --prefill-pruning METHOD [--keep K] -p N,…</c>: time to first token (the prompt as one step and
/// the argmax of its logits) with the full prompt and with pruning, in alternating rounds (full first in even rounds,
/// pruned first in odd ones), random tokens.
/// </summary>
public static class PruningBench
{
    /// <summary>Runs the comparison on <paramref name="model"/> for each of <paramref name="lengths"/>.</summary>
    public static IReadOnlyList<PruningBenchResult> Run(LlamaModel model, IReadOnlyList<int> lengths, PrefillPruningOptions options, int rounds)
    {
        int max = lengths.Max();
        if (max > model.Config.ContextLength) throw new ArgumentException($"-p {max}: the model's context is {model.Config.ContextLength}");
        var rng = new Random(3);
        var tokens = new int[max];
        for (int i = 0; i < max; i++) tokens[i] = rng.Next(model.Config.VocabSize);
        using var state = model.CreateState(max, max);
        var results = new List<PruningBenchResult>();
        foreach (int n in lengths)
        {
            var full = new List<double>();
            var pruned = new List<double>();
            var ratio = new List<double>();
            double share = 1;
            for (int round = -1; round < rounds; round++)   // round -1: warm-up
            {
                double f = 0, p = 0;
                for (int k = 0; k < 2; k++)
                {
                    bool prune = (k == 0) == (round % 2 != 0);
                    state.Rewind(0);
                    state.UsePrefillPruning(prune ? options : null);
                    long t0 = Stopwatch.GetTimestamp();
                    model.Forward(state, tokens.AsSpan(0, n));
                    GC.KeepAlive(TensorPrimitives.IndexOfMax<float>(state.Logits));
                    double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    if (prune) { p = ms; share = state.Pruning!.ComputedShare; } else f = ms;
                }
                if (round < 0) continue;
                full.Add(f);
                pruned.Add(p);
                ratio.Add(f / p);
            }
            results.Add(new PruningBenchResult(n, Spread.Of(full), Spread.Of(pruned), Spread.Of(ratio), share));
        }
        return results;
    }
}
