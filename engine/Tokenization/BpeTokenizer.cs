using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;

namespace Tessera.Tokenization;

/// <summary>How a <see cref="BpeTokenizer"/> prepares text and reads its vocabulary.</summary>
internal sealed record BpeSettings
{
    /// <summary>Merge rules, highest priority first, each written "left right".</summary>
    public required string[] Merges { get; init; }

    /// <summary>Splits text into words before merging; null: the whole text is one word.</summary>
    public PreTokenizer? PreTokenizer { get; init; }

    /// <summary>Byte-level BPE: words are UTF-8 bytes written as GPT-2 characters (<see cref="ByteLevel"/>). When
    /// false, words are merged as characters and characters that are not tokens fall back to <c>&lt;0xNN&gt;</c>.</summary>
    public bool ByteLevel { get; init; } = true;

    /// <summary>A word that is itself a token is emitted whole, without merging (llama.cpp's <c>ignore_merges</c>).</summary>
    public bool IgnoreMerges { get; init; }

    /// <summary>Spaces become U+2581 before merging (SentencePiece-style BPE).</summary>
    public bool EscapeWhitespace { get; init; }

    /// <summary>With <see cref="EscapeWhitespace"/>: prefix a space to text at the start and after special tokens,
    /// and strip one leading space from the first piece when decoding.</summary>
    public bool AddSpacePrefix { get; init; }

    /// <summary>Without byte tokens: consecutive unknown characters give one unknown token.</summary>
    public bool FuseUnknown { get; init; }

    /// <summary>Remove spaces before punctuation when decoding (llama.cpp's <c>clean_spaces</c>).</summary>
    public bool CleanSpaces { get; init; }
}

/// <summary>
/// BPE tokenizer, a port of llama.cpp's <c>llm_tokenizer_bpe</c> (GGUF <c>tokenizer.ggml.model = gpt2</c>) that
/// also serves Hugging Face tokenizer.json BPE models, byte-level (Llama 3, Qwen) or SentencePiece-style with byte
/// fallback (Llama 2, TinyStories). Each word from the pre-tokenizer is split into characters, then the adjacent pair
/// with the lowest merge rank (leftmost on ties) is merged until no pair has a rule. Hugging Face's BPE model merges
/// the same way, so one core serves both sources.
/// </summary>
internal sealed class BpeTokenizer : Tokenizer
{
    private static readonly Comparer<(int Rank, int Left)> RankOrder =
        Comparer<(int Rank, int Left)>.Create((a, b) => a.Rank != b.Rank ? a.Rank.CompareTo(b.Rank) : a.Left.CompareTo(b.Left));

    private readonly BpeSettings _settings;
    private readonly Dictionary<string, int> _ranks;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _ranksBySpan;

    public BpeTokenizer(TokenVocabulary vocab, BpeSettings settings)
        : base(vocab, BuildPieces(vocab, settings), removeLeadingSpace: settings.EscapeWhitespace && settings.AddSpacePrefix,
               cleanSpaces: settings.CleanSpaces)
    {
        _settings = settings;
        _ranks = new Dictionary<string, int>(settings.Merges.Length, StringComparer.Ordinal);
        for (int i = 0; i < settings.Merges.Length; i++) _ranks.TryAdd(settings.Merges[i], i); // first rule wins
        _ranksBySpan = _ranks.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    internal BpeSettings Settings => _settings;

    private struct Symbol
    {
        public int Start, Length, Prev, Next;
    }

    private readonly record struct Bigram(int Left, int Right, int LeftLength, int RightLength);

    private protected override void EncodeText(ReadOnlySpan<char> raw, bool afterSpecial, List<int> output)
    {
        string text = raw.ToString();
        if (_settings.EscapeWhitespace)
            text = ((_settings.AddSpacePrefix && afterSpecial) ? " " + text : text).Replace(' ', SpmTokenizer.EscapedSpace);

        var words = new List<(int Start, int Length)>();
        if (_settings.PreTokenizer != null) _settings.PreTokenizer.Split(text, words);
        else if (text.Length > 0) words.Add((0, text.Length));

        var symbols = new List<Symbol>();
        var queue = new PriorityQueue<Bigram, (int, int)>(RankOrder);
        char[] scratch = [];
        foreach (var (start, length) in words)
        {
            string word = _settings.ByteLevel ? ToByteLevel(text.AsSpan(start, length)) : text.Substring(start, length);
            if (_settings.IgnoreMerges)
            {
                int whole = Vocabulary.Find(word);
                if (whole >= 0) { output.Add(whole); continue; }
            }
            if (scratch.Length < word.Length + 1) scratch = new char[Math.Max(word.Length + 1, 2 * scratch.Length)];
            MergeWord(word, symbols, queue, scratch);
            var span = CollectionsMarshal.AsSpan(symbols);
            for (int i = 0; i != -1 && span.Length > 0; i = span[i].Next)
                EmitSymbol(word.AsSpan(span[i].Start, span[i].Length), output);
        }
    }

    private void MergeWord(string word, List<Symbol> symbols, PriorityQueue<Bigram, (int, int)> queue, char[] scratch)
    {
        symbols.Clear();
        queue.Clear();
        for (int offs = 0; offs < word.Length;)
        {
            int len = char.IsHighSurrogate(word[offs]) && offs + 1 < word.Length && char.IsLowSurrogate(word[offs + 1]) ? 2 : 1;
            int index = symbols.Count;
            offs += len;
            symbols.Add(new Symbol { Start = offs - len, Length = len, Prev = index - 1, Next = offs == word.Length ? -1 : index + 1 });
        }
        var span = CollectionsMarshal.AsSpan(symbols);
        for (int i = 1; i < span.Length; i++) AddBigram(word, span, queue, scratch, i - 1, i);

        while (queue.TryDequeue(out var bigram, out _))
        {
            ref Symbol left = ref span[bigram.Left];
            ref Symbol right = ref span[bigram.Right];
            // Symbols only grow from the left and vanish when merged, so unchanged lengths mean unchanged text.
            if (left.Length == 0 || right.Length == 0 || left.Length != bigram.LeftLength || right.Length != bigram.RightLength)
                continue;
            left.Length += right.Length;
            right.Length = 0;
            left.Next = right.Next;
            if (right.Next >= 0) span[right.Next].Prev = bigram.Left;
            AddBigram(word, span, queue, scratch, left.Prev, bigram.Left);
            AddBigram(word, span, queue, scratch, bigram.Left, left.Next);
        }
    }

    private void AddBigram(string word, Span<Symbol> symbols, PriorityQueue<Bigram, (int, int)> queue, char[] scratch, int left, int right)
    {
        if (left == -1 || right == -1) return;
        ref Symbol l = ref symbols[left];
        ref Symbol r = ref symbols[right];
        // merge rules are keyed "left right"
        word.AsSpan(l.Start, l.Length).CopyTo(scratch);
        scratch[l.Length] = ' ';
        word.AsSpan(r.Start, r.Length).CopyTo(scratch.AsSpan(l.Length + 1));
        if (!_ranksBySpan.TryGetValue(scratch.AsSpan(0, l.Length + 1 + r.Length), out int rank)) return;
        queue.Enqueue(new Bigram(left, right, l.Length, r.Length), (rank, left));
    }

    private void EmitSymbol(ReadOnlySpan<char> symbol, List<int> output)
    {
        int id = Vocabulary.Find(symbol);
        if (id >= 0) { output.Add(id); return; }
        if (_settings.ByteLevel)
        {
            // Unreachable with a complete byte-level vocabulary (every byte character is a token); llama.cpp then
            // looks up the symbol byte by byte and drops what it cannot find.
            foreach (char c in symbol)
                if (Vocabulary.Find([c]) is int b and >= 0) output.Add(b);
            return;
        }
        Span<byte> utf8 = stackalloc byte[8];
        int count = Encoding.UTF8.GetBytes(symbol, utf8);
        Span<int> ids = stackalloc int[8];
        bool all = true;
        for (int j = 0; j < count && all; j++) all = (ids[j] = Vocabulary.FindByteToken(utf8[j])) >= 0;
        if (all) { foreach (int b in ids[..count]) output.Add(b); return; }
        if (Vocabulary.UnknownId is not int unk) return;
        if (_settings.FuseUnknown && output.Count > 0 && output[^1] == unk) return;
        output.Add(unk);
    }

    private static string ToByteLevel(ReadOnlySpan<char> text)
    {
        int n = Encoding.UTF8.GetByteCount(text);
        byte[] rented = ArrayPool<byte>.Shared.Rent(n);
        try
        {
            Encoding.UTF8.GetBytes(text, rented);
            return string.Create(n, rented, static (chars, bytes) =>
            {
                for (int i = 0; i < chars.Length; i++) chars[i] = Tokenization.ByteLevel.Encode(bytes[i]);
            });
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    // llama.cpp's token_to_piece for BPE vocabularies: control, unknown and user-defined tokens verbatim; normal
    // tokens decoded from GPT-2 characters (or with U+2581 turned into spaces for SentencePiece-style BPE); byte
    // tokens as their byte.
    private static PieceTable BuildPieces(TokenVocabulary vocab, BpeSettings settings) => PieceTable.Build(vocab.Count, (id, sink) =>
    {
        TokenAttributes a = vocab.Attributes[id];
        string text = vocab.Texts[id];
        if ((a & (TokenAttributes.Control | TokenAttributes.Unknown | TokenAttributes.UserDefined)) != 0)
            sink.AddRange(Encoding.UTF8.GetBytes(text));
        else if ((a & TokenAttributes.Normal) != 0)
        {
            if (settings.EscapeWhitespace || !settings.ByteLevel)
                sink.AddRange(Encoding.UTF8.GetBytes(text.Replace(SpmTokenizer.EscapedSpace, ' ')));
            else
                DecodeByteLevel(text, sink);
        }
        else if ((a & TokenAttributes.Byte) != 0)
            sink.Add(ByteTokens.Parse(text));
    });

    // llama_decode_text: each character back to its byte; a character outside the map is written as llama.cpp
    // writes it, "[UNK_BYTE_0x" + its UTF-8 in hex + the token text + "]".
    private static void DecodeByteLevel(string text, List<byte> sink)
    {
        Span<byte> utf8 = stackalloc byte[4];
        foreach (Rune r in text.EnumerateRunes())
        {
            int b = r.IsBmp ? Tokenization.ByteLevel.Decode((char)r.Value) : -1;
            if (b >= 0) { sink.Add((byte)b); continue; }
            int n = r.EncodeToUtf8(utf8);
            var sb = new StringBuilder("[UNK_BYTE_0x");
            foreach (byte x in utf8[..n]) sb.Append(x.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            sb.Append(text).Append(']');
            sink.AddRange(Encoding.UTF8.GetBytes(sb.ToString()));
        }
    }
}
