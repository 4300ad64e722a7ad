using System.Globalization;
using System.Text.RegularExpressions;

namespace Tessera.Tokenization;

/// <summary>
/// Splits text into words before BPE, with one or more regular expressions applied in turn (llama.cpp's
/// <c>unicode_regex_split</c>): each expression splits every piece left by the previous one into its matches and the
/// text between them. Regexes run on a copy of the text where every code point is one UTF-16 unit (a character
/// outside the BMP is replaced by a BMP stand-in of the same general category), so that <c>\p{L}</c>,
/// <c>\p{N}</c> and <c>[^...]</c> see whole characters as llama.cpp and Hugging Face do, not surrogate halves.
/// </summary>
internal sealed class PreTokenizer
{
    // llama.cpp's adaptations of the Hugging Face patterns (case-insensitive contractions spelled out).
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    internal const string Llama3Pattern =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    internal const string Qwen2Pattern =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    // The same two patterns as written in Hugging Face tokenizer.json files (Llama 3, Qwen 2/2.5/3).
    private const string HfLlama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string HfQwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private readonly Regex[] _regexes;

    public PreTokenizer(string name, params string[] patterns)
    {
        Name = name;
        _regexes = Array.ConvertAll(patterns, p => new Regex(p, RegexOptions.CultureInvariant | RegexOptions.Compiled));
    }

    /// <summary>The pre-tokenizer's name (llama.cpp's <c>tokenizer.ggml.pre</c> family).</summary>
    public string Name { get; }

    /// <summary>The pre-tokenizers for <c>tokenizer.ggml.pre</c> values, grouped as llama.cpp groups them, with the
    /// vocabulary flags llama.cpp sets for each; null when Tessera does not know the value.</summary>
    public static PreTokenizerSettings? ForGguf(string pre) => pre switch
    {
        "default" or "" => new(new PreTokenizer("default", @"[\p{P}\$\+<=>\^~\|]+", Gpt2Pattern, @"\p{N}+", "[0-9][0-9][0-9]"), CleanSpaces: true),
        "llama3" or "llama-v3" or "llama-bpe" or "falcon3" or "pixtral" =>
            new(new PreTokenizer("llama3", Llama3Pattern), CleanSpaces: true, IgnoreMerges: true, AddBos: true),
        "dbrx" or "smaug-bpe" => new(new PreTokenizer("llama3", Llama3Pattern), CleanSpaces: true),
        "qwen2" or "deepseek-r1-qwen" => new(new PreTokenizer("qwen2", Qwen2Pattern), CleanSpaces: false),
        "stablelm2" or "megrez" => new(new PreTokenizer("qwen2", Qwen2Pattern), CleanSpaces: true),
        "gpt-2" or "phi-2" or "jina-es" or "jina-de" or "gigachat" or "jina-v2-es" or "jina-v2-de" or "mpt" or "olmo" or "jais" =>
            new(new PreTokenizer("gpt2", Gpt2Pattern), CleanSpaces: true),
        "smollm" or "command-r" => new(new PreTokenizer("starcoder", @"\p{N}", Gpt2Pattern), CleanSpaces: false),
        "starcoder" or "refact" or "codeshell" or "exaone" or "minerva-7b" =>
            new(new PreTokenizer("starcoder", @"\p{N}", Gpt2Pattern), CleanSpaces: true),
        _ => null,
    };

    /// <summary>A pre-tokenizer for a Hugging Face Split pattern: llama.cpp's version of the Llama 3 and Qwen 2
    /// patterns where the pattern is one of those, else the pattern itself.</summary>
    public static PreTokenizer FromHfPattern(string pattern) => pattern switch
    {
        HfLlama3Pattern or Llama3Pattern => new PreTokenizer("llama3", Llama3Pattern),
        HfQwen2Pattern or Qwen2Pattern => new PreTokenizer("qwen2", Qwen2Pattern),
        Gpt2Pattern => new PreTokenizer("gpt2", Gpt2Pattern),
        _ => new PreTokenizer("custom", pattern),
    };

    /// <summary>Appends the (start, length) of each word of <paramref name="text"/> to <paramref name="words"/>.</summary>
    public void Split(string text, List<(int Start, int Length)> words)
    {
        // Collapse to one UTF-16 unit per code point; map[i] is where collapsed unit i starts in text.
        string collapsed = text;
        int[]? map = null;
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0)
        {
            var chars = new char[text.Length];
            map = new int[text.Length + 1];
            int n = 0;
            for (int i = 0; i < text.Length; i++)
            {
                map[n] = i;
                if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                {
                    chars[n++] = StandIn(char.ConvertToUtf32(text[i], text[i + 1]));
                    i++;
                }
                else chars[n++] = text[i];
            }
            map[n] = text.Length;
            collapsed = new string(chars, 0, n);
        }

        var pieces = new List<(int Start, int Length)> { (0, collapsed.Length) };
        var next = new List<(int Start, int Length)>();
        foreach (var regex in _regexes)
        {
            next.Clear();
            foreach (var (start, length) in pieces)
            {
                int pos = start;
                foreach (var m in regex.EnumerateMatches(collapsed.AsSpan(start, length)))
                {
                    if (m.Length == 0) continue;
                    int ms = start + m.Index;
                    if (ms > pos) next.Add((pos, ms - pos));
                    next.Add((ms, m.Length));
                    pos = ms + m.Length;
                }
                if (pos < start + length) next.Add((pos, start + length - pos));
            }
            (pieces, next) = (next, pieces);
        }

        foreach (var (start, length) in pieces)
        {
            if (length == 0) continue;
            if (map == null) words.Add((start, length));
            else words.Add((map[start], map[start + length] - map[start]));
        }
    }

    // A BMP character of the same category class as a supplementary-plane code point.
    private static char StandIn(int codePoint) => CharUnicodeInfo.GetUnicodeCategory(codePoint) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => '\u4E00',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => '\u2160',
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => '\u0300',
        UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => '\u00A1',
        UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
            or UnicodeCategory.OtherSymbol => '\u2600',
        _ => '\uE000',
    };
}

/// <summary>A pre-tokenizer with the vocabulary flags llama.cpp ties to it.</summary>
internal sealed record PreTokenizerSettings(PreTokenizer PreTokenizer, bool CleanSpaces, bool IgnoreMerges = false, bool AddBos = false);
