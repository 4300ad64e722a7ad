using System.Buffers;
using System.Text;
using Tessera.Formats;
using Tessera.Formats.Gguf;

namespace Tessera.Tokenization;

/// <summary>
/// Text to token ids and back, reproducing llama.cpp's tokenizer and detokenizer exactly. Two algorithms sit behind
/// it: SentencePiece-style (llama.cpp's <c>llm_tokenizer_spm</c>: score-ordered merges with byte fallback) and BPE
/// (llama.cpp's <c>llm_tokenizer_bpe</c>: merge ranks after a regex pre-tokenizer, byte-level or SentencePiece-style).
/// Obtain one with <see cref="Load"/> or <see cref="FromGguf"/>. Instances are immutable and thread-safe.
/// </summary>
public abstract class Tokenizer
{
    private readonly PieceTable _pieces;
    private readonly bool _removeLeadingSpace;
    private readonly bool _cleanSpaces;

    private protected Tokenizer(TokenVocabulary vocab, PieceTable pieces, bool removeLeadingSpace, bool cleanSpaces)
    {
        Vocabulary = vocab;
        _pieces = pieces;
        _removeLeadingSpace = removeLeadingSpace;
        _cleanSpaces = cleanSpaces;
    }

    internal TokenVocabulary Vocabulary { get; }

    /// <summary>Number of token ids (valid ids are 0 to VocabSize - 1).</summary>
    public int VocabSize => Vocabulary.Count;

    /// <summary>Beginning-of-sequence token, if the tokenizer has one.</summary>
    public int? BosId => Vocabulary.BosId;

    /// <summary>End-of-sequence token, if the tokenizer has one.</summary>
    public int? EosId => Vocabulary.EosId;

    /// <summary>End-of-turn token (for example <c>&lt;|eot_id|&gt;</c> or <c>&lt;|im_end|&gt;</c>), named by the
    /// file or found by its text as llama.cpp does; null when there is none.</summary>
    public int? EotId => Vocabulary.EotId;

    /// <summary>Fill-in-the-middle markers (prefix, suffix, middle), named by the file or found by their text as
    /// llama.cpp does (<c>&lt;|fim_prefix|&gt;</c>, <c>&lt;PRE&gt;</c>, ...); null when the vocabulary has none.</summary>
    public int? FimPrefixId => Vocabulary.FimPrefixId;
    /// <inheritdoc cref="FimPrefixId"/>
    public int? FimSuffixId => Vocabulary.FimSuffixId;
    /// <inheritdoc cref="FimPrefixId"/>
    public int? FimMiddleId => Vocabulary.FimMiddleId;

    /// <summary>Whether the vocabulary has all three fill-in-the-middle markers.</summary>
    public bool CanInfill => FimPrefixId is not null && FimSuffixId is not null && FimMiddleId is not null;

    /// <summary>
    /// The prompt that asks a fill-in-the-middle model for the text between <paramref name="prefix"/> and
    /// <paramref name="suffix"/>, in llama.cpp's prefix-suffix-middle layout: [BOS] &lt;PRE&gt; prefix &lt;SUF&gt;
    /// suffix &lt;MID&gt;. The model then writes the middle and ends it with an end-of-generation token.
    /// </summary>
    /// <exception cref="NotSupportedException">The vocabulary has no such markers (the message names the file).</exception>
    public IReadOnlyList<int> EncodeInfill(string prefix, string suffix)
    {
        if (FimPrefixId is not int pre || FimSuffixId is not int suf || FimMiddleId is not int mid)
            throw new NotSupportedException($"{Vocabulary.Source}: the vocabulary has no fill-in-the-middle tokens (tokenizer.ggml.fim_pre_token_id, " +
                "fim_suf_token_id and fim_mid_token_id, or their texts), so this model cannot insert text before a suffix");
        var ids = new List<int>(prefix.Length / 3 + suffix.Length / 3 + 4);
        if (AddBosByDefault && BosId is int bos) ids.Add(bos);
        ids.Add(pre);
        ids.AddRange(Encode(prefix, false));
        ids.Add(suf);
        ids.AddRange(Encode(suffix, false));
        ids.Add(mid);
        return ids;
    }

    /// <summary>The unknown token, if any.</summary>
    public int? UnknownId => Vocabulary.UnknownId;

    /// <summary>Whether the model expects a BOS token at the start of a prompt (llama.cpp's <c>add_bos</c>).</summary>
    public bool AddBosByDefault => Vocabulary.AddBos;

    /// <summary>Whether the model's tokenizer appends EOS (llama.cpp's <c>add_eos</c>); reported, never applied by
    /// <see cref="Encode"/>.</summary>
    public bool AddEosByDefault => Vocabulary.AddEos;

    /// <summary>Every id that ends generation: EOS, EOT, EOM and the tokens llama.cpp recognises by text.</summary>
    public IReadOnlySet<int> EndOfGenerationIds => Vocabulary.EndOfGeneration;

    /// <summary>The texts of the end-of-generation control tokens (e.g. <c>&lt;|end_story|&gt;</c>, <c>&lt;|eot_id|&gt;</c>):
    /// a model that spells one out in ordinary tokens has ended too (see <see cref="Generation.StopStringFilter"/>).</summary>
    public IReadOnlyList<string> EndOfGenerationTexts => _endTexts ??=
        [.. Vocabulary.EndOfGeneration.Order().Select(id => Vocabulary.Texts[id]).Where(t => t.Length > 1).Distinct()];
    private string[]? _endTexts;

    /// <summary>
    /// Tokenizes <paramref name="text"/> as llama.cpp's <c>llama_tokenize</c> does.
    /// </summary>
    /// <param name="text">The text.</param>
    /// <param name="addBos">Put <see cref="BosId"/> first (throws when the tokenizer has none). Pass
    /// <see cref="AddBosByDefault"/> to do what the model asks.</param>
    /// <param name="parseSpecial">Turn control tokens written in the text (such as <c>&lt;|start_story|&gt;</c>)
    /// into their ids; otherwise they are tokenized as plain text. User-defined tokens are always recognised.</param>
    public IReadOnlyList<int> Encode(string text, bool addBos, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var output = new List<int>(text.Length / 3 + 2);
        if (addBos)
            output.Add(BosId ?? throw new InvalidOperationException($"the tokenizer from {Vocabulary.Source} has no BOS token"));
        bool afterSpecial = true; // the start of the text counts as following a special token
        foreach (var f in SpecialTokenSplitter.Split(Vocabulary, text, parseSpecial))
        {
            if (f.IsToken) { output.Add(f.Token); afterSpecial = true; continue; }
            EncodeText(text.AsSpan(f.Start, f.Length), afterSpecial, output);
            afterSpecial = false;
        }
        return output;
    }

    /// <summary>Tokenizes one run of text that contains no special token.</summary>
    /// <param name="text">The run.</param>
    /// <param name="afterSpecial">The run starts the input or follows a special token (where SentencePiece-style
    /// tokenizers add their space prefix).</param>
    /// <param name="output">Ids are appended here.</param>
    private protected abstract void EncodeText(ReadOnlySpan<char> text, bool afterSpecial, List<int> output);

    /// <summary>
    /// Detokenizes as llama.cpp's <c>llama_detokenize</c> (with <c>remove_special</c> false): pieces are
    /// concatenated, the first piece loses one leading space where the tokenizer adds a space prefix, and BPE
    /// tokenizers with <c>clean_spaces</c> remove the spaces before <c>? ! . ,</c> and some contractions. Invalid
    /// UTF-8 (a sequence cut in the middle of a character) becomes U+FFFD.
    /// </summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="renderSpecial">Render control and unknown tokens as their text (llama.cpp's
    /// <c>common_detokenize</c> default); false renders them as nothing.</param>
    public string Decode(ReadOnlySpan<int> ids, bool renderSpecial = true)
    {
        int total = 0;
        foreach (int id in ids) total += PieceBytes(id, renderSpecial).Length;
        if (total == 0) return "";
        byte[] buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            int n = 0;
            for (int i = 0; i < ids.Length; i++)
            {
                ReadOnlySpan<byte> piece = PieceBytes(ids[i], renderSpecial);
                if (i == 0 && _removeLeadingSpace && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
                piece.CopyTo(buffer.AsSpan(n));
                n += piece.Length;
            }
            if (_cleanSpaces) n = SpaceCleaner.Clean(buffer.AsSpan(0, n));
            return Encoding.UTF8.GetString(buffer, 0, n);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The raw UTF-8 bytes token <paramref name="id"/> stands for, as llama.cpp's <c>token_to_piece</c> with no
    /// space stripping: a byte-fallback token gives its single byte, so one token may hold part of a character.
    /// A streamer appends these and emits text up to the last complete UTF-8 sequence. The span points into a table
    /// owned by the tokenizer: nothing is allocated.
    /// </summary>
    /// <param name="id">The token.</param>
    /// <param name="renderSpecial">Render control and unknown tokens as their text; false (llama.cpp's default
    /// when printing generated tokens) renders them as nothing.</param>
    public ReadOnlySpan<byte> GetTokenBytes(int id, bool renderSpecial = false) => PieceBytes(id, renderSpecial);

    /// <summary>Appends <see cref="GetTokenBytes"/> of <paramref name="id"/> to <paramref name="sink"/>.</summary>
    public void AppendTokenBytes(int id, List<byte> sink, bool renderSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(sink);
        sink.AddRange(PieceBytes(id, renderSpecial));
    }

    /// <summary>The token's text as stored in the vocabulary (for example <c>▁Hello</c>, <c>ĠHello</c> or
    /// <c>&lt;0x0A&gt;</c>).</summary>
    public string TokenText(int id) => Vocabulary.Texts[CheckId(id)];

    /// <summary>The token's attributes (normal, control, byte ...).</summary>
    public TokenAttributes GetAttributes(int id) => Vocabulary.Attributes[CheckId(id)];

    /// <summary>Whether generating <paramref name="id"/> ends generation (see <see cref="EndOfGenerationIds"/>).</summary>
    public bool IsEndOfGeneration(int id) => Vocabulary.EndOfGeneration.Contains(id);

    /// <summary>Whether <paramref name="id"/> is a control token (BOS, EOS, chat markers).</summary>
    public bool IsControl(int id) => Vocabulary.Has(CheckId(id), TokenAttributes.Control);

    private ReadOnlySpan<byte> PieceBytes(int id, bool renderSpecial)
    {
        CheckId(id);
        if (!renderSpecial && (Vocabulary.Attributes[id] & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0)
            return default;
        return _pieces[id];
    }

    private int CheckId(int id)
    {
        if ((uint)id >= (uint)Vocabulary.Count)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary (0..{Vocabulary.Count - 1})");
        return id;
    }

    /// <summary>
    /// Loads a tokenizer from <paramref name="path"/>: a GGUF file (vocabulary-only or a full model), a Hugging Face
    /// <c>tokenizer.json</c> (with its sibling <c>tokenizer_config.json</c> when present), a SentencePiece
    /// <c>tokenizer.model</c>, or a directory holding <c>tokenizer.json</c> or <c>tokenizer.model</c>.
    /// </summary>
    /// <exception cref="ModelFormatException">The path holds no usable tokenizer; the message names the file and
    /// what is missing or unsupported.</exception>
    public static Tokenizer Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            string json = Path.Combine(path, "tokenizer.json");
            if (File.Exists(json)) return HfTokenizerJsonLoader.Load(json);
            string model = Path.Combine(path, "tokenizer.model");
            if (File.Exists(model)) return SentencePieceModelLoader.Load(model);
            throw new ModelFormatException(path, "no tokenizer: the directory has neither tokenizer.json nor tokenizer.model");
        }
        if (!File.Exists(path)) throw new ModelFormatException(path, "no tokenizer: file not found");
        if (IsGguf(path))
        {
            using var file = GgufFile.Open(path);
            return FromGguf(file);
        }
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return HfTokenizerJsonLoader.Load(path);
        if (path.EndsWith(".model", StringComparison.OrdinalIgnoreCase)) return SentencePieceModelLoader.Load(path);
        throw new ModelFormatException(path,
            "no tokenizer: expected a .gguf file, a tokenizer.json, a tokenizer.model or a directory holding one");
    }

    /// <summary>Builds the tokenizer described by a GGUF file's <c>tokenizer.ggml.*</c> metadata.</summary>
    /// <exception cref="ModelFormatException">The file has no tokenizer or one Tessera does not support.</exception>
    public static Tokenizer FromGguf(GgufFile file) => GgufTokenizerLoader.Load(file);

    private static bool IsGguf(string path)
    {
        try
        {
            using var s = File.OpenRead(path);
            Span<byte> magic = stackalloc byte[4];
            return s.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("GGUF"u8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException(path, $"no tokenizer: cannot read the file: {e.Message}", e);
        }
    }
}
