using Tessera.Generation;
using Tessera.Model;
using Tessera.Sampling;

namespace Tessera.Evaluation;

/// <summary>Prompts cut inside a word, continued greedily with and without token healing.</summary>
/// <param name="Prompts">Cuts tried.</param>
/// <param name="Plain">Continuations that complete the cut word exactly (the rest of it, then a non-letter), without healing.</param>
/// <param name="Healed">The same with token healing.</param>
/// <param name="BoundaryPrompts">Prompts cut after a whole word (before its space).</param>
/// <param name="BoundaryChanged">Of those, continuations whose first characters healing changed from the plain ones.</param>
/// <param name="BoundaryPlainNext">Of those, plain continuations that go on with the text's next word.</param>
/// <param name="BoundaryHealedNext">The same with token healing.</param>
public sealed record TokenHealingResult(int Prompts, int Plain, int Healed, int BoundaryPrompts, int BoundaryChanged, int BoundaryPlainNext, int BoundaryHealedNext)
{
    /// <summary>Of the first <see cref="ExactPrompts"/> mid-word cuts, continuations that complete the word when its
    /// rest is chosen byte by byte from exact next-byte probabilities (<see cref="Generation.ExactBytes"/>, greedy).</summary>
    public int Exact { get; init; }
    /// <summary>Mid-word cuts the exact-byte method ran on.</summary>
    public int ExactPrompts { get; init; }
    /// <summary>Of those cuts, the ones plain continuation completed.</summary>
    public int ExactPlain { get; init; }
    /// <summary>Of those cuts, the ones token healing completed.</summary>
    public int ExactHealed { get; init; }
    /// <summary>Model passes per next-byte distribution the exact method computed (one per split point).</summary>
    public double ExactPassesPerByte { get; init; }
}

/// <summary>
/// How often token healing completes a word cut in the middle, against plain continuation, on real text: every word
/// of at least four letters is cut after half its letters (the prompt is the text up to there), and the greedy
/// continuation of a few tokens must start with the rest of the word followed by a non-letter. The same words cut
/// after their last letter measure the risk at a word boundary: how often healing changes what follows.
/// </summary>
public static class TokenHealingEval
{
    /// <summary>Runs the measurement over <paramref name="text"/>, at most <paramref name="limit"/> cuts.</summary>
    /// <param name="m">The model.</param>
    /// <param name="text">The text to cut.</param>
    /// <param name="limit">Most cuts.</param>
    /// <param name="tokens">Tokens of each greedy continuation.</param>
    /// <param name="exactLimit">Mid-word cuts on which exact next-byte probabilities are also tried (they cost a pass
    /// per split of each byte).</param>
    public static TokenHealingResult Run(LoadedModel m, string text, int limit = 200, int tokens = 6, int exactLimit = 0)
    {
        int prompts = 0, plain = 0, healed = 0, boundary = 0, changed = 0, plainNext = 0, healedNext = 0;
        int exact = 0, exactPrompts = 0, exactPlain = 0, exactHealed = 0;
        using var scorer = exactLimit > 0 ? new ModelTokenScorerFor(m) : null;
        var exactBytes = scorer is null ? null : new ExactBytes(scorer.Scorer, m.Tokenizer);
        var gen = new TextGenerator(m.Model, m.Tokenizer);
        using var state = m.Model.CreateState(Math.Min(m.Config.ContextLength, 1024));
        string Continue(string prompt, bool heal)
        {
            state.Rewind(0);
            var ids = m.Tokenizer.Encode(prompt, m.Tokenizer.AddBosByDefault);
            var o = new GenerationOptions { MaxTokens = tokens, Sampling = SamplingOptions.Greedy, TokenHealing = heal, StopAtEndOfGeneration = false };
            return string.Concat(gen.Generate(state, ids, o).Select(t => t.Text));
        }
        int i = 0;
        while (prompts < limit && i < text.Length)
        {
            if (!char.IsLetter(text[i]) || (i > 0 && char.IsLetter(text[i - 1]))) { i++; continue; }
            int end = i;
            while (end < text.Length && char.IsLetter(text[end])) end++;
            int length = end - i;
            if (length >= 4 && end < text.Length && i > 0)
            {
                int cut = i + length / 2;
                string rest = text[cut..end];
                string context = text[Math.Max(0, i - 300)..cut];
                bool Completes(string c) => c.StartsWith(rest, StringComparison.Ordinal) && (c.Length == rest.Length || !char.IsLetter(c[rest.Length]));
                prompts++;
                bool p = Completes(Continue(context, false)), h = Completes(Continue(context, true));
                if (p) plain++;
                if (h) healed++;
                if (exactBytes is not null && exactPrompts < exactLimit)
                {
                    exactPrompts++;
                    if (p) exactPlain++;
                    if (h) exactHealed++;
                    string word = exactBytes.CompleteWord(context);
                    if (Completes(word + Continue(context + word, false))) exact++;
                }
                string whole = text[Math.Max(0, i - 300)..end];
                string a = Continue(whole, false), b = Continue(whole, true);
                boundary++;
                int n = Math.Min(8, Math.Min(a.Length, b.Length));
                if (a.Length == 0 || b.Length == 0 || string.CompareOrdinal(a, 0, b, 0, n) != 0) changed++;
                // The text's own continuation up to the end of its next word.
                int next = end;
                while (next < text.Length && !char.IsLetter(text[next])) next++;
                while (next < text.Length && char.IsLetter(text[next])) next++;
                string truth = text[end..next];
                if (a.StartsWith(truth, StringComparison.Ordinal)) plainNext++;
                if (b.StartsWith(truth, StringComparison.Ordinal)) healedNext++;
            }
            i = end;
        }
        return new TokenHealingResult(prompts, plain, healed, boundary, changed, plainNext, healedNext)
        {
            Exact = exact, ExactPrompts = exactPrompts, ExactPlain = exactPlain, ExactHealed = exactHealed,
            ExactPassesPerByte = exactBytes is not { Steps: > 0 } ? 0 : (double)exactBytes.Passes / exactBytes.Steps,
        };
    }

    /// <summary>A scorer over the model's own cache, disposed with the run.</summary>
    private sealed class ModelTokenScorerFor(LoadedModel m) : IDisposable
    {
        public ModelTokenScorer Scorer { get; } = new(m.Model, Math.Min(m.Config.ContextLength, 1024));
        public void Dispose() => Scorer.Dispose();
    }
}
