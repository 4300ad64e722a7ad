using Google.Protobuf;
using Tessera.Formats;

namespace Tessera.Tokenization;

/// <summary>
/// Reads a SentencePiece <c>tokenizer.model</c> (a <c>ModelProto</c> protobuf) into Tessera's SentencePiece
/// tokenizer. Only the fields llama.cpp's converter uses are read: the pieces (text, score, type), the trainer's
/// model type and special ids, and the normalizer's <c>add_dummy_prefix</c>. The sibling tokenizer_config.json, when
/// present, decides add-BOS/EOS.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers' LlamaTokenizer reads the same file, but Tessera's tokenizers must also split special
/// tokens and detokenize exactly as llama.cpp does, which needs the piece table itself; the tests use LlamaTokenizer
/// as an independent check of the ids.
/// </remarks>
internal static class SentencePieceModelLoader
{
    private const int ModelTypeUnigram = 1, ModelTypeBpe = 2;

    public static Tokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new ModelFormatException(path, "no tokenizer: file not found");
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException(path, $"no tokenizer: cannot read the file: {e.Message}", e);
        }

        var texts = new List<string>();
        var scores = new List<float>();
        var attrs = new List<TokenAttributes>();
        int modelType = ModelTypeUnigram, unk = 0, bos = 1, eos = 2, pad = -1;
        bool addDummyPrefix = true;
        try
        {
            var input = new CodedInputStream(data);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1: // repeated SentencePiece pieces
                        ReadPiece(new CodedInputStream(input.ReadBytes().ToByteArray()), texts, scores, attrs);
                        break;
                    case 2: // TrainerSpec
                        ReadTrainer(new CodedInputStream(input.ReadBytes().ToByteArray()), ref modelType, ref unk, ref bos, ref eos, ref pad);
                        break;
                    case 3: // NormalizerSpec
                        ReadNormalizer(new CodedInputStream(input.ReadBytes().ToByteArray()), ref addDummyPrefix);
                        break;
                    default:
                        input.SkipLastField();
                        break;
                }
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ModelFormatException(path, $"no tokenizer: not a SentencePiece model ({e.Message})", e);
        }
        if (texts.Count == 0) throw new ModelFormatException(path, "no tokenizer: the SentencePiece model has no pieces");
        if (modelType != ModelTypeBpe)
            throw new ModelFormatException(path,
                $"unsupported SentencePiece model type {(modelType == ModelTypeUnigram ? "UNIGRAM" : modelType.ToString(System.Globalization.CultureInfo.InvariantCulture))} (Tessera reads BPE models, as llama.cpp's 'llama' tokenizer)");

        var config = TokenizerConfig.ReadBeside(path);
        int? Valid(int id) => id >= 0 && id < texts.Count ? id : null;
        var special = new SpecialTokenIds
        {
            Bos = Valid(bos),
            Eos = Valid(eos),
            Unknown = Valid(unk),
            Padding = Valid(pad),
            AddBos = config.AddBos ?? true,
            AddEos = config.AddEos ?? false,
        };
        var vocab = new TokenVocabulary(path, texts.ToArray(), scores.ToArray(), attrs.ToArray(), special);
        return new SpmTokenizer(vocab, addDummyPrefix);
    }

    private static void ReadPiece(CodedInputStream input, List<string> texts, List<float> scores, List<TokenAttributes> attrs)
    {
        string piece = "";
        float score = 0;
        int type = 1; // NORMAL
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: piece = input.ReadString(); break;
                case 2: score = input.ReadFloat(); break;
                case 3: type = input.ReadEnum(); break;
                default: input.SkipLastField(); break;
            }
        }
        texts.Add(piece);
        scores.Add(score);
        attrs.Add(TokenTypes.FromTokenType(type)); // SentencePiece's Type enum has the GGUF token type values
    }

    private static void ReadTrainer(CodedInputStream input, ref int modelType, ref int unk, ref int bos, ref int eos, ref int pad)
    {
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 3: modelType = input.ReadEnum(); break;
                case 40: unk = input.ReadInt32(); break;
                case 41: bos = input.ReadInt32(); break;
                case 42: eos = input.ReadInt32(); break;
                case 43: pad = input.ReadInt32(); break;
                default: input.SkipLastField(); break;
            }
        }
    }

    private static void ReadNormalizer(CodedInputStream input, ref bool addDummyPrefix)
    {
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 3) addDummyPrefix = input.ReadBool();
            else input.SkipLastField();
        }
    }
}
