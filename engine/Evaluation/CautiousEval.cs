using Tessera.Generation;
using Tessera.Model;
using Tessera.Sampling;

namespace Tessera.Evaluation;

/// <summary>Cautious NTP against plain sampling at the same settings, over seeded stories.</summary>
/// <param name="Stories">Stories generated each way.</param>
/// <param name="PlainPerplexity">Mean perplexity of the plain stories, scored by the scoring model.</param>
/// <param name="CautiousPerplexity">The same for Cautious NTP's stories.</param>
/// <param name="PlainPassesPerToken">Forward passes per generated token, plain (1).</param>
/// <param name="CautiousPassesPerToken">Forward passes per generated token with Cautious NTP.</param>
/// <param name="TrialsPerToken">Trials sampled per generated token.</param>
public sealed record CautiousResult(int Stories, double PlainPerplexity, double CautiousPerplexity, double PlainPassesPerToken,
    double CautiousPassesPerToken, double TrialsPerToken);

/// <summary>
/// Generates a story per seed with plain sampling and with Cautious NTP (same prompt, sampling options and seed),
/// alternating, and scores each by teacher forcing under <c>scorer</c> (the F32 model): the perplexity of the
/// generated tokens given the prompt, at temperature 1 without truncation.
/// </summary>
public static class CautiousEval
{
    /// <summary>Runs <paramref name="stories"/> seeds.</summary>
    public static CautiousResult Run(LoadedModel generator, LoadedModel scorer, string prompt, SamplingOptions sampling, int tokens, int stories, CautiousOptions cautious)
    {
        var gen = new TextGenerator(generator.Model, generator.Tokenizer);
        var ids = generator.Tokenizer.Encode(prompt, generator.Tokenizer.AddBosByDefault);
        int ctx = Math.Min(generator.Config.ContextLength, ids.Count + tokens + 8);
        double plainPpl = 0, cautiousPpl = 0, passes = 0, trials = 0;
        long plainTokens = 0, cautiousTokens = 0;
        for (int s = 0; s < stories; s++)
        {
            foreach (bool careful in new[] { false, true })
            {
                using var state = generator.Model.CreateState(ctx);
                var stats = new GenerationStats();
                var o = new GenerationOptions
                {
                    MaxTokens = tokens, Sampling = sampling with { Seed = (ulong)(1000 + s) }, StopAtEndOfGeneration = false,
                    Cautious = careful ? cautious : null,
                };
                var output = gen.Generate(state, ids, o, stats).Where(t => t.Token >= 0).Select(t => t.Token).ToArray();
                double ppl = Score(scorer, ids, output);
                if (careful)
                {
                    cautiousPpl += ppl;
                    cautiousTokens += output.Length;
                    passes += output.Length + stats.Cautious!.ExtraForwardPasses;
                    trials += stats.Cautious.Trials;
                }
                else { plainPpl += ppl; plainTokens += output.Length; }
            }
        }
        return new CautiousResult(stories, plainPpl / stories, cautiousPpl / stories, 1, passes / cautiousTokens, trials / cautiousTokens);
    }

    /// <summary>exp of the mean negative log-likelihood of <paramref name="output"/> after <paramref name="prompt"/>.</summary>
    public static double Score(LoadedModel scorer, IReadOnlyList<int> prompt, int[] output)
    {
        if (output.Length == 0) return double.NaN;
        using var state = scorer.Model.CreateState(prompt.Count + output.Length + 1);
        scorer.Model.Forward(state, prompt.ToArray());
        double nll = 0;
        int[] one = new int[1];
        foreach (int t in output)
        {
            var logits = state.Logits;
            double max = double.NegativeInfinity;
            foreach (float l in logits) max = Math.Max(max, l);
            double sum = 0;
            foreach (float l in logits) sum += Math.Exp(l - max);
            nll -= logits[t] - max - Math.Log(sum);
            one[0] = t;
            scorer.Model.Forward(state, one);
        }
        return Math.Exp(nll / output.Length);
    }
}
