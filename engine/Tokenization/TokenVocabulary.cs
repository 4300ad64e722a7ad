using Tessera.Formats;

namespace Tessera.Tokenization;

/// <summary>
/// The token table shared by every tokenizer: id to text, text to id, scores, attributes, special ids and the
/// end-of-generation set. Built once from plain arrays (whatever file they came from) and never changed afterwards,
/// so one instance can serve many threads.
/// </summary>
internal sealed class TokenVocabulary
{
    // llama.cpp auto-detects EOT/EOG tokens by text (llama_vocab::impl::load). Tried in this order; llama.cpp walks
    // an unordered_map, so where a vocabulary holds several of these its EOT choice is unspecified: first in list wins.
    // llama.cpp's fallbacks when a file names no fill-in-the-middle tokens: the texts the families that have them use.
    private static readonly string[] FimPrefixTexts = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>"];
    private static readonly string[] FimSuffixTexts = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>"];
    private static readonly string[] FimMiddleTexts = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>"];

    private static readonly string[] EotTexts =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
        "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
    ];

    private static readonly string[] EogTexts =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
        "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<｜end▁of▁sentence｜>",
    ];

    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idsBySpan;
    private readonly HashSet<int> _endOfGeneration;

    /// <param name="source">File the vocabulary came from, for error messages.</param>
    /// <param name="texts">Token texts, index = id.</param>
    /// <param name="scores">Scores (SentencePiece log-probabilities), or null for all zero.</param>
    /// <param name="attributes">Attributes per token, or null for all <see cref="TokenAttributes.Normal"/>.</param>
    /// <param name="special">Special ids and add-BOS/EOS flags.</param>
    public TokenVocabulary(string source, string[] texts, float[]? scores, TokenAttributes[]? attributes, SpecialTokenIds special)
    {
        if (texts.Length == 0) throw new ModelFormatException(source, "the tokenizer vocabulary is empty");
        if (scores != null && scores.Length < texts.Length)
            throw new ModelFormatException(source, $"the tokenizer has {scores.Length} scores for {texts.Length} tokens");
        if (attributes != null && attributes.Length < texts.Length)
            throw new ModelFormatException(source, $"the tokenizer has {attributes.Length} token types for {texts.Length} tokens");
        Source = source;
        Texts = texts;
        Scores = scores ?? new float[texts.Length];
        Attributes = attributes != null ? (TokenAttributes[])attributes.Clone() : Enumerable.Repeat(TokenAttributes.Normal, texts.Length).ToArray();

        _ids = new Dictionary<string, int>(texts.Length, StringComparer.Ordinal);
        for (int i = 0; i < texts.Length; i++)
        {
            if (texts[i].Length == 0) texts[i] = $"[EMPTY_{i}]"; // llama.cpp does the same
            if (!_ids.TryAdd(texts[i], i))
                throw new ModelFormatException(source, $"duplicate token in vocabulary: '{texts[i]}' has ids {_ids[texts[i]]} and {i}");
        }
        _idsBySpan = _ids.GetAlternateLookup<ReadOnlySpan<char>>();

        BosId = Check(special.Bos, "BOS");
        EosId = Check(special.Eos, "EOS");
        UnknownId = Check(special.Unknown, "unknown");
        PaddingId = Check(special.Padding, "padding");
        int? eom = Check(special.Eom, "EOM");
        AddBos = special.AddBos && BosId != null;
        AddEos = special.AddEos && EosId != null;

        EotId = Check(special.Eot, "EOT");
        if (EotId == null)
            foreach (string t in EotTexts)
                if (_ids.TryGetValue(t, out int id)) { EotId = id; break; }
        if (eom == null && _ids.TryGetValue("<|eom_id|>", out int eomId)) eom = eomId;
        FimPrefixId = Check(special.FimPrefix, "FIM prefix") ?? Find(FimPrefixTexts);
        FimSuffixId = Check(special.FimSuffix, "FIM suffix") ?? Find(FimSuffixTexts);
        FimMiddleId = Check(special.FimMiddle, "FIM middle") ?? Find(FimMiddleTexts);

        _endOfGeneration = [];
        foreach (string t in EogTexts)
            if (_ids.TryGetValue(t, out int id)) _endOfGeneration.Add(id);
        // llama.cpp drops <|end|> from the EOG set when the vocabulary also has <|return|> and <|call|> (gpt-oss).
        if (_ids.TryGetValue("<|end|>", out int end) && _ids.ContainsKey("<|return|>") && _ids.ContainsKey("<|call|>"))
            _endOfGeneration.Remove(end);
        // Tokens that end generation are control tokens, whatever the file says (llama.cpp overrides them too).
        foreach (int id in _endOfGeneration) Attributes[id] |= TokenAttributes.Control;
        if (EotId is int eot) Attributes[eot] |= TokenAttributes.Control;
        if (eom is int eomTok) Attributes[eomTok] |= TokenAttributes.Control;
        foreach (int? id in new[] { EosId, EotId, eom })
            if (id is int v) _endOfGeneration.Add(v);

        // llama.cpp's cache_special_tokens: control, user-defined and unknown tokens, longest text first.
        SpecialTokens = Enumerable.Range(0, texts.Length)
            .Where(i => (Attributes[i] & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0)
            .OrderByDescending(i => texts[i].Length).ThenBy(i => i)
            .ToArray();

        int? Find(string[] candidates)
        {
            foreach (string t in candidates)
                if (_ids.TryGetValue(t, out int id)) return id;
            return null;
        }

        int? Check(int? id, string what)
        {
            if (id is int v && (v < 0 || v >= texts.Length))
                throw new ModelFormatException(source, $"the {what} token id {v} is outside the vocabulary (0..{texts.Length - 1})");
            return id;
        }
    }

    public string Source { get; }
    public string[] Texts { get; }
    public float[] Scores { get; }
    public TokenAttributes[] Attributes { get; }
    public int Count => Texts.Length;
    public int? BosId { get; }
    public int? EosId { get; }
    public int? EotId { get; }
    public int? UnknownId { get; }
    public int? PaddingId { get; }
    public int? FimPrefixId { get; }
    public int? FimSuffixId { get; }
    public int? FimMiddleId { get; }
    public bool AddBos { get; }
    public bool AddEos { get; }

    /// <summary>Control, user-defined and unknown token ids, longest text first: the order special tokens are
    /// searched for in text.</summary>
    public int[] SpecialTokens { get; }

    public IReadOnlySet<int> EndOfGeneration => _endOfGeneration;

    /// <summary>The id of a token text, or -1.</summary>
    public int Find(ReadOnlySpan<char> text) => _idsBySpan.TryGetValue(text, out int id) ? id : -1;

    /// <summary>The id of a token text, or -1.</summary>
    public int Find(string text) => _ids.TryGetValue(text, out int id) ? id : -1;

    /// <summary>The <c>&lt;0xNN&gt;</c> byte token for <paramref name="b"/>, else the token whose text is that single
    /// byte as a character, else -1 (llama.cpp's <c>byte_to_token</c> for SentencePiece vocabularies).</summary>
    public int FindByteToken(byte b)
    {
        Span<char> hex = ['<', '0', 'x', Hex(b >> 4), Hex(b & 15), '>'];
        int id = Find(hex);
        if (id >= 0) return id;
        return b < 0x80 ? Find([(char)b]) : -1;

        static char Hex(int x) => (char)(x < 10 ? '0' + x : 'A' + x - 10);
    }

    public bool Has(int id, TokenAttributes attribute) => (Attributes[id] & attribute) != 0;
}
