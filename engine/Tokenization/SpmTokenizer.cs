using System.Buffers;
using System.Text;

namespace Tessera.Tokenization;

/// <summary>
/// SentencePiece-style tokenizer, a port of llama.cpp's <c>llm_tokenizer_spm</c> (GGUF <c>tokenizer.ggml.model =
/// llama</c>, SentencePiece <c>tokenizer.model</c> files): spaces become U+2581, a space is prefixed to text at the
/// start and after each special token, then adjacent symbols are merged highest score first (leftmost on ties) while
/// the merged text is a token; symbols that are not tokens fall back to <c>&lt;0xNN&gt;</c> byte tokens.
/// </summary>
internal sealed class SpmTokenizer : Tokenizer
{
    internal const char EscapedSpace = '\u2581';
    private static readonly BigramComparer Comparer = new();
    private readonly bool _addSpacePrefix;

    /// <param name="vocab">Tokens with scores and types.</param>
    /// <param name="addSpacePrefix">Prefix a space to text at the start and after special tokens, and strip it
    /// from the first piece when decoding (GGUF <c>tokenizer.ggml.add_space_prefix</c>, true by default).</param>
    public SpmTokenizer(TokenVocabulary vocab, bool addSpacePrefix)
        : base(vocab, BuildPieces(vocab), removeLeadingSpace: addSpacePrefix, cleanSpaces: false)
    {
        _addSpacePrefix = addSpacePrefix;
    }

    private struct Symbol
    {
        public int Start, Length, Prev, Next;
    }

    private readonly record struct Bigram(int Left, int Right, int Size);

    private sealed class BigramComparer : IComparer<(float Score, int Left)>
    {
        // Highest score first; on equal scores the leftmost pair (llama.cpp's llm_bigram_spm::comparator).
        public int Compare((float Score, int Left) a, (float Score, int Left) b) =>
            a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left);
    }

    private protected override void EncodeText(ReadOnlySpan<char> raw, bool afterSpecial, List<int> output)
    {
        bool prefix = _addSpacePrefix && afterSpecial;
        int n = raw.Length + (prefix ? 1 : 0);
        char[] buffer = ArrayPool<char>.Shared.Rent(n);
        try
        {
            Span<char> text = buffer.AsSpan(0, n);
            if (prefix) text[0] = ' ';
            raw.CopyTo(text[(prefix ? 1 : 0)..]);
            text.Replace(' ', EscapedSpace);
            Tokenize(text, output);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    private void Tokenize(ReadOnlySpan<char> text, List<int> output)
    {
        // split into characters (code points)
        var symbols = new List<Symbol>(text.Length);
        for (int offs = 0; offs < text.Length;)
        {
            int len = char.IsHighSurrogate(text[offs]) && offs + 1 < text.Length && char.IsLowSurrogate(text[offs + 1]) ? 2 : 1;
            int index = symbols.Count;
            offs += len;
            symbols.Add(new Symbol { Start = offs - len, Length = len, Prev = index - 1, Next = offs == text.Length ? -1 : index + 1 });
        }
        if (symbols.Count == 0) return;
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(symbols);

        var queue = new PriorityQueue<Bigram, (float, int)>(Comparer);
        for (int i = 1; i < span.Length; i++) TryAddBigram(text, span, queue, i - 1, i);

        // keep merging the highest-scoring pair while there is one
        while (queue.TryDequeue(out var bigram, out _))
        {
            ref Symbol left = ref span[bigram.Left];
            ref Symbol right = ref span[bigram.Right];
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != bigram.Size) continue; // stale
            left.Length += right.Length;
            right.Length = 0;
            left.Next = right.Next;
            if (right.Next >= 0) span[right.Next].Prev = bigram.Left;
            TryAddBigram(text, span, queue, left.Prev, bigram.Left);
            TryAddBigram(text, span, queue, bigram.Left, left.Next);
        }

        for (int i = 0; i != -1; i = span[i].Next) Resegment(text.Slice(span[i].Start, span[i].Length), output);
    }

    private void TryAddBigram(ReadOnlySpan<char> text, Span<Symbol> symbols, PriorityQueue<Bigram, (float, int)> queue, int left, int right)
    {
        if (left == -1 || right == -1) return;
        int size = symbols[left].Length + symbols[right].Length;
        int id = Vocabulary.Find(text.Slice(symbols[left].Start, size));
        if (id < 0) return;
        queue.Enqueue(new Bigram(left, right, size), (Vocabulary.Scores[id], left));
    }

    // A final symbol is either a token or a single character that is not one (merges only ever form tokens, so
    // llama.cpp's rev_merge lookup never applies here): the character falls back to byte tokens.
    private void Resegment(ReadOnlySpan<char> symbol, List<int> output)
    {
        int id = Vocabulary.Find(symbol);
        if (id >= 0) { output.Add(id); return; }
        Span<byte> utf8 = stackalloc byte[8];
        int count = Encoding.UTF8.GetBytes(symbol, utf8);
        for (int j = 0; j < count; j++)
        {
            int b = Vocabulary.FindByteToken(utf8[j]);
            // llama.cpp aborts when a vocabulary has no token for a byte; Tessera emits the unknown token instead.
            if (b < 0) b = Vocabulary.UnknownId ?? -1;
            if (b >= 0) output.Add(b);
        }
    }

    // llama.cpp's token_to_piece for SPM vocabularies: control, unknown and user-defined tokens verbatim, normal
    // tokens with U+2581 turned back into spaces, byte tokens as their byte, anything else empty.
    private static PieceTable BuildPieces(TokenVocabulary vocab) => PieceTable.Build(vocab.Count, (id, sink) =>
    {
        TokenAttributes a = vocab.Attributes[id];
        string text = vocab.Texts[id];
        if ((a & (TokenAttributes.Control | TokenAttributes.Unknown | TokenAttributes.UserDefined)) != 0)
            sink.AddRange(Encoding.UTF8.GetBytes(text));
        else if ((a & TokenAttributes.Normal) != 0)
            sink.AddRange(Encoding.UTF8.GetBytes(text.Replace(EscapedSpace, ' ')));
        else if ((a & TokenAttributes.Byte) != 0)
            sink.Add(ByteTokens.Parse(text));
    });
}
