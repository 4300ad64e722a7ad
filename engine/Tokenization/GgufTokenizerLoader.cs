using Tessera.Formats;
using Tessera.Formats.Gguf;

namespace Tessera.Tokenization;

/// <summary>
/// Reads a tokenizer from GGUF metadata (<c>tokenizer.ggml.*</c>), with llama.cpp's defaults where a key is absent
/// (<c>llama_vocab::impl::load</c>).
/// </summary>
internal static class GgufTokenizerLoader
{
    public static Tokenizer Load(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string path = file.Path;
        if (!file.TryGetString("tokenizer.ggml.model", out string model))
            throw new ModelFormatException(path, "no tokenizer: the file has no tokenizer.ggml.model key");
        if (!file.Contains("tokenizer.ggml.tokens"))
            throw new ModelFormatException(path, "no tokenizer: the file has no tokenizer.ggml.tokens key");
        string[] tokens = (string[])file.GetStringArray("tokenizer.ggml.tokens").Clone();
        float[]? scores = ReadScores(file);
        TokenAttributes[]? attributes = file.TryGetInt32Array("tokenizer.ggml.token_type", out int[] types)
            ? Array.ConvertAll(types, TokenTypes.FromTokenType)
            : null;
        file.TryGetString("tokenizer.ggml.pre", out string pre);

        switch (model)
        {
            case "llama":
            {
                // llama.cpp's SPM defaults: BOS 1, EOS 2, UNK 0, add BOS, space prefix.
                var special = ReadSpecial(file, tokens.Length, bos: 1, eos: 2, unk: 0, addBos: true);
                var vocab = new TokenVocabulary(path, tokens, scores, attributes, special);
                bool spacePrefix = !file.TryGetBool("tokenizer.ggml.add_space_prefix", out bool p) || p;
                return new SpmTokenizer(vocab, spacePrefix);
            }
            case "gpt2":
            {
                PreTokenizerSettings settings = PreTokenizer.ForGguf(pre)
                    ?? throw new ModelFormatException(path,
                        $"unsupported pre-tokenizer tokenizer.ggml.pre = '{pre}' (Tessera knows default, llama3/llama-bpe, qwen2, gpt-2, smollm, starcoder and their aliases)");
                if (!file.Contains("tokenizer.ggml.merges"))
                    throw new ModelFormatException(path, "no tokenizer: tokenizer.ggml.model is gpt2 but the file has no tokenizer.ggml.merges key");
                string[] merges = file.GetStringArray("tokenizer.ggml.merges");
                // llama.cpp's BPE defaults are BOS = EOS = 11, a GPT-2 relic; Tessera reports no BOS/EOS instead.
                var special = ReadSpecial(file, tokens.Length, bos: null, eos: null, unk: null, addBos: settings.AddBos);
                var vocab = new TokenVocabulary(path, tokens, scores, attributes, special);
                // tokenizer.ggml.add_space_prefix only matters to llama.cpp's SentencePiece-style BPE (gemma4), which
                // Tessera does not read from GGUF; byte-level BPE never prefixes a space.
                return new BpeTokenizer(vocab, new BpeSettings
                {
                    Merges = merges,
                    PreTokenizer = settings.PreTokenizer,
                    IgnoreMerges = settings.IgnoreMerges,
                    CleanSpaces = settings.CleanSpaces,
                });
            }
            default:
                throw new ModelFormatException(path,
                    $"unsupported tokenizer.ggml.model = '{model}' (Tessera supports 'llama' (SentencePiece) and 'gpt2' (byte-level BPE))");
        }
    }

    private static float[]? ReadScores(GgufFile file)
    {
        if (file.TryGetFloatArray("tokenizer.ggml.scores", out float[] f)) return f;
        if (file.TryGetInt32Array("tokenizer.ggml.scores", out int[] i)) return Array.ConvertAll(i, x => (float)x);
        return null;
    }

    private static SpecialTokenIds ReadSpecial(GgufFile file, int count, int? bos, int? eos, int? unk, bool addBos)
    {
        bool addEos = false;
        if (file.TryGetBool("tokenizer.ggml.add_bos_token", out bool b)) addBos = b;
        if (file.TryGetBool("tokenizer.ggml.add_eos_token", out bool e)) addEos = e;
        return new SpecialTokenIds
        {
            Bos = Id("tokenizer.ggml.bos_token_id", bos),
            Eos = Id("tokenizer.ggml.eos_token_id", eos),
            Eot = Id("tokenizer.ggml.eot_token_id", null),
            Eom = Id("tokenizer.ggml.eom_token_id", null),
            Unknown = Id("tokenizer.ggml.unknown_token_id", unk),
            Padding = Id("tokenizer.ggml.padding_token_id", null),
            // Today's keys, then the older ones llama.cpp still reads.
            FimPrefix = Id("tokenizer.ggml.fim_pre_token_id", Id("tokenizer.ggml.prefix_token_id", null)),
            FimSuffix = Id("tokenizer.ggml.fim_suf_token_id", Id("tokenizer.ggml.suffix_token_id", null)),
            FimMiddle = Id("tokenizer.ggml.fim_mid_token_id", Id("tokenizer.ggml.middle_token_id", null)),
            AddBos = addBos,
            AddEos = addEos,
        };

        // As llama.cpp: a default outside the vocabulary is dropped, an id in the file outside it is ignored.
        int? Id(string key, int? fallback)
        {
            int? id = fallback is int f && f < count ? f : null;
            if (file.TryGetUInt32(key, out uint v) && v < count) id = (int)v;
            return id;
        }
    }
}
