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
public sealed record TokenHealingResult(int Prompts, int Plain, int Healed, int BoundaryPrompts, int BoundaryChanged, int BoundaryPlainNext, int BoundaryHealedNext);

/// <summary>
/// How often token healing completes a word cut in the middle, against plain continuation, on real text: every word
/// of at least four letters is cut after half its letters (the prompt is the text up to there), and the greedy
/// continuation of a few tokens must start with the rest of the word followed by a non-letter. The same words cut
/// after their last letter measure the risk at a word boundary: how often healing changes what follows.
/// </summary>
public static class TokenHealingEval
{
    /// <summary>Runs the measurement over <paramref name="text"/>, at most <paramref name="limit"/> cuts.</summary>
    public static TokenHealingResult Run(LoadedModel m, string text, int limit = 200, int tokens = 6)
    {
        int prompts = 0, plain = 0, healed = 0, boundary = 0, changed = 0, plainNext = 0, healedNext = 0;
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
                if (Completes(Continue(context, false))) plain++;
                if (Completes(Continue(context, true))) healed++;
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
        return new TokenHealingResult(prompts, plain, healed, boundary, changed, plainNext, healedNext);
    }
}
