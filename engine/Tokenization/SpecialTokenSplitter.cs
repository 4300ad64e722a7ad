namespace Tessera.Tokenization;

/// <summary>A piece of the input: either a special token already identified, or a run of text still to tokenize.</summary>
internal readonly record struct TextFragment(int Token, int Start, int Length)
{
    public bool IsToken => Token >= 0;
    public static TextFragment OfText(int start, int length) => new(-1, start, length);
    public static TextFragment OfToken(int id) => new(id, 0, 0);
}

/// <summary>
/// Splits text around special tokens before the tokenizer proper sees it: llama.cpp's
/// <c>tokenizer_st_partition</c>. Special tokens are tried longest first; each one splits every text fragment at
/// every occurrence. User-defined tokens are always matched; control and unknown tokens only when
/// <c>parseSpecial</c> is set.
/// </summary>
internal static class SpecialTokenSplitter
{
    public static List<TextFragment> Split(TokenVocabulary vocab, string text, bool parseSpecial)
    {
        var fragments = new List<TextFragment>();
        if (text.Length == 0) return fragments;
        fragments.Add(TextFragment.OfText(0, text.Length));
        var next = new List<TextFragment>();
        foreach (int id in vocab.SpecialTokens)
        {
            TokenAttributes attr = vocab.Attributes[id];
            if (!parseSpecial && (attr & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0) continue;
            string special = vocab.Texts[id];
            bool any = false;
            foreach (var f in fragments)
                if (!f.IsToken && f.Length >= special.Length && text.AsSpan(f.Start, f.Length).Contains(special, StringComparison.Ordinal))
                { any = true; break; }
            if (!any) continue;

            next.Clear();
            foreach (var f in fragments)
            {
                if (f.IsToken) { next.Add(f); continue; }
                int start = f.Start, end = f.Start + f.Length;
                while (start < end)
                {
                    int match = text.IndexOf(special, start, end - start, StringComparison.Ordinal);
                    if (match < 0) { next.Add(TextFragment.OfText(start, end - start)); break; }
                    int leftEnd = match;
                    if ((attr & TokenAttributes.LeftStrip) != 0)
                        while (leftEnd > start && IsAsciiSpace(text[leftEnd - 1])) leftEnd--;
                    if (leftEnd > start) next.Add(TextFragment.OfText(start, leftEnd - start));
                    next.Add(TextFragment.OfToken(id));
                    start = match + special.Length;
                    if ((attr & TokenAttributes.RightStrip) != 0)
                        while (start < end && IsAsciiSpace(text[start])) start++;
                }
            }
            (fragments, next) = (next, fragments);
        }
        return fragments;
    }

    // C isspace in the "C" locale, which llama.cpp uses for lstrip/rstrip.
    private static bool IsAsciiSpace(char c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';
}
