using System.Text;
using Tessera.Constraints;
using Tessera.Tokenization;

namespace Tessera.Generation;

/// <summary>
/// Token healing (as in guidance): a prompt that ends mid-word ends in a token the model rarely sees there ("Once upon
/// a ti" ends in " ti", where training text has " time"). The prompt is backed up by its last token, and the first
/// generated tokens are constrained to spell out the removed text before anything else (more than one token is taken
/// back where a token could span them, see <see cref="Heal"/>), so the model picks the token
/// that really continues the word; the removed text is not shown again. Built on the grammar constraint: the grammar
/// is the removed text followed by anything, so after it sampling is only checked, never changed.
/// </summary>
public static class TokenHealing
{
    /// <summary>Most prompt tokens taken back.</summary>
    public const int MaxTokens = 4;

    /// <summary>
    /// The prompt backed up, and the text taken back. The last token is taken back when some vocabulary token is
    /// longer and starts with its text (else no token could heal it); then each earlier one while the text taken back
    /// is still the start of a longer token (TinyStories spells "upon a time, " as one token, so "Once upon a ti"
    /// ends "upon a " + "ti", and only taking both back lets the model write "upon a time, "). Nothing is taken back
    /// across a control token or BOS, or when the text is not whole UTF-8.
    /// </summary>
    public static (IReadOnlyList<int> Prompt, string Removed) Heal(Tokenizer tokenizer, IReadOnlyList<int> prompt)
    {
        var vocab = Constraints.VocabularyBytes.For(tokenizer);
        int k = 0;
        var bytes = new List<byte>();
        while (k < MaxTokens && prompt.Count - k - 1 >= 1)
        {
            int t = prompt[prompt.Count - 1 - k];
            if (tokenizer.IsControl(t)) break;
            var candidate = new List<byte>(tokenizer.GetTokenBytes(t).ToArray());
            candidate.AddRange(bytes);
            if (candidate.Count == 0 || !vocab.IsProperPrefix(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(candidate))) break;
            bytes = candidate;
            k++;
        }
        if (k == 0) return (prompt, "");
        string text;
        try { text = new UTF8Encoding(false, true).GetString(bytes.ToArray()); }
        catch (DecoderFallbackException) { return (prompt, ""); }
        return ([.. prompt.Take(prompt.Count - k)], text);
    }

    /// <summary>The grammar for an output that starts with <paramref name="removed"/>.</summary>
    public static Grammar PrefixGrammar(string removed) => Grammar.ParseGbnf($"root ::= {Gbnf.Literal(removed)} .*\n", "token healing");

    /// <summary>The options and prompt to generate with: healed when <see cref="GenerationOptions.TokenHealing"/> asks
    /// and there is no other constraint (a grammar already decides what may come first).</summary>
    internal static (IReadOnlyList<int> Prompt, GenerationOptions Options, string Removed) Apply(Tokenizer tokenizer, IReadOnlyList<int> prompt, GenerationOptions options)
    {
        if (!options.TokenHealing || options.Constraint is not null) return (prompt, options, "");
        var (healed, removed) = Heal(tokenizer, prompt);
        if (removed.Length == 0) return (prompt, options, "");
        return (healed, options with { Constraint = PrefixGrammar(removed) }, removed);
    }
}

/// <summary>Drops the healed text from the start of the output stream (it was in the prompt already).</summary>
internal sealed class HealedPrefix(string removed)
{
    private int _left = removed.Length;

    public string Take(string text)
    {
        if (_left == 0 || text.Length == 0) return text;
        int n = Math.Min(_left, text.Length);
        _left -= n;
        return text[n..];
    }
}
