using System.Text.Json;
using Tessera.Formats;

namespace Tessera.Tokenization;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> whose model is BPE, in either of its two common shapes:
/// byte-level (a Split regex plus ByteLevel pre-tokenizer: Llama 3, Qwen) or SentencePiece-style (Prepend/Replace
/// normalizers or a Metaspace pre-tokenizer, byte fallback: Llama 2, TinyStories). Added tokens become control tokens
/// when marked special (or looking like <c>&lt;|...|&gt;</c>, as llama.cpp's converter decides) and user-defined
/// tokens otherwise. BOS/EOS and add-BOS come from the sibling <c>tokenizer_config.json</c>, else from the
/// post-processor template, else from llama.cpp's defaults for the pre-tokenizer.
/// </summary>
/// <remarks>
/// Tokenization is Tessera's own BPE (<see cref="BpeTokenizer"/>), not Microsoft.ML.Tokenizers' BpeTokenizer: that
/// one has no byte fallback to <c>&lt;0xNN&gt;</c> tokens and no <c>ignore_merges</c> (both change ids on real
/// vocabularies), and special-token splitting and detokenization must follow llama.cpp, which our core already does
/// for GGUF. One core for both sources keeps them from drifting apart.
/// </remarks>
internal static class HfTokenizerJsonLoader
{
    public static Tokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new ModelFormatException(path, "no tokenizer: file not found");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException(path, $"no tokenizer: cannot read the JSON: {e.Message}", e);
        }
        using (doc)
        {
            try
            {
                return Build(path, doc.RootElement, TokenizerConfig.ReadBeside(path));
            }
            catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
            {
                throw new ModelFormatException(path, $"malformed tokenizer.json: {e.Message}", e);
            }
        }
    }

    private static Tokenizer Build(string path, JsonElement root, TokenizerConfig config)
    {
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, "no tokenizer: tokenizer.json has no \"model\" object");
        string type = Str(model, "type") ?? (model.TryGetProperty("merges", out _) ? "BPE" : "?");
        if (type != "BPE")
            throw new ModelFormatException(path, $"unsupported tokenizer.json model type '{type}' (Tessera reads BPE models)");
        if (!model.TryGetProperty("vocab", out var vocabJson) || vocabJson.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, "no tokenizer: tokenizer.json model has no vocab");

        // id -> text, from the model vocabulary and the added tokens
        var texts = new Dictionary<int, string>();
        foreach (var p in vocabJson.EnumerateObject()) texts[p.Value.GetInt32()] = p.Name;
        var added = new List<(int Id, string Text, bool Special, bool LStrip, bool RStrip)>();
        if (root.TryGetProperty("added_tokens", out var addedJson) && addedJson.ValueKind == JsonValueKind.Array)
            foreach (var t in addedJson.EnumerateArray())
            {
                int id = t.GetProperty("id").GetInt32();
                string text = t.GetProperty("content").GetString() ?? "";
                added.Add((id, text, Flag(t, "special"), Flag(t, "lstrip"), Flag(t, "rstrip")));
                texts[id] = text;
            }
        int count = texts.Keys.Max() + 1;
        var tokens = new string[count];
        var attrs = new TokenAttributes[count];
        bool byteFallback = Flag(model, "byte_fallback");
        for (int i = 0; i < count; i++)
        {
            if (texts.TryGetValue(i, out string? t)) { tokens[i] = t; attrs[i] = TokenAttributes.Normal; }
            else { tokens[i] = $"[PAD{i}]"; attrs[i] = TokenAttributes.Unused; } // as llama.cpp's converter pads
            if (byteFallback && ByteTokens.IsByteToken(tokens[i])) attrs[i] = TokenAttributes.Byte;
        }
        foreach (var (id, text, isSpecial, lstrip, rstrip) in added)
        {
            attrs[id] = isSpecial || LooksSpecial(text) ? TokenAttributes.Control : TokenAttributes.UserDefined;
            if (lstrip) attrs[id] |= TokenAttributes.LeftStrip;
            if (rstrip) attrs[id] |= TokenAttributes.RightStrip;
        }
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = count - 1; i >= 0; i--) ids[tokens[i]] = i;
        int? unk = Str(model, "unk_token") is string u && ids.TryGetValue(u, out int ui) ? ui : null;
        if (unk is int unkId) attrs[unkId] = (attrs[unkId] & ~TokenAttributes.Normal) | TokenAttributes.Unknown;

        var shape = ReadShape(path, root);
        var (templateBos, templateAddsBos) = ReadTemplate(root, ids);
        int? Lookup(string? text) => text != null && ids.TryGetValue(text, out int id) ? id : null;
        var special = new SpecialTokenIds
        {
            Bos = Lookup(config.BosToken) ?? templateBos,
            Eos = Lookup(config.EosToken),
            Unknown = unk,
            Padding = Lookup(config.PadToken),
            AddBos = config.AddBos ?? (templateAddsBos || shape.Pre?.AddBos == true),
            AddEos = config.AddEos ?? false,
        };
        var vocab = new TokenVocabulary(path, tokens, null, attrs, special);

        var merges = ReadMerges(path, model);
        return new BpeTokenizer(vocab, new BpeSettings
        {
            Merges = merges,
            PreTokenizer = shape.Pre?.PreTokenizer ?? shape.Split,
            ByteLevel = shape.ByteLevel,
            IgnoreMerges = Flag(model, "ignore_merges"),
            EscapeWhitespace = shape.Escape,
            AddSpacePrefix = shape.Prefix,
            FuseUnknown = Flag(model, "fuse_unk"),
            CleanSpaces = config.CleanSpaces ?? shape.Pre?.CleanSpaces ?? false,
        });
    }

    private sealed record Shape(bool ByteLevel, bool Escape, bool Prefix, PreTokenizerSettings? Pre, PreTokenizer? Split);

    // Works out the normalizer and pre-tokenizer; anything Tessera would get wrong is refused by name.
    private static Shape ReadShape(string path, JsonElement root)
    {
        bool prepend = false, replace = false, metaspace = false, metaspaceSplit = false, byteLevel = false;
        string? pattern = null;
        foreach (var n in Flatten(root, "normalizer", "normalizers"))
            switch (Str(n, "type"))
            {
                // Accepted but not applied: llama.cpp ignores it too (its Qwen GGUFs tokenize text as given), and .NET's
                // invariant globalization mode, which Tessera builds with, has no normalization data.
                case "NFC": break;
                case "Prepend" when Str(n, "prepend") == "\u2581": prepend = true; break;
                case "Replace" when Str(n, "content") == "\u2581" && n.TryGetProperty("pattern", out var pat) && Str(pat, "String") == " ":
                    replace = true; break;
                default: throw new ModelFormatException(path, $"unsupported tokenizer.json normalizer {n.GetRawText()}");
            }
        foreach (var p in Flatten(root, "pre_tokenizer", "pretokenizers"))
            switch (Str(p, "type"))
            {
                case "ByteLevel":
                    byteLevel = true;
                    if (Flag(p, "add_prefix_space"))
                        throw new ModelFormatException(path, "unsupported tokenizer.json ByteLevel pre-tokenizer with add_prefix_space = true");
                    if (!p.TryGetProperty("use_regex", out var ur) || ur.ValueKind != JsonValueKind.False)
                        pattern ??= PreTokenizer.Gpt2Pattern;
                    break;
                case "Split" when p.TryGetProperty("pattern", out var sp) && Str(sp, "Regex") is string regex
                                  && Str(p, "behavior") == "Isolated" && !Flag(p, "invert"):
                    if (pattern != null) throw new ModelFormatException(path, "unsupported tokenizer.json pre-tokenizer: more than one Split pattern");
                    pattern = regex;
                    break;
                case "Metaspace" when Str(p, "replacement") == "\u2581":
                    metaspace = true;
                    metaspaceSplit = !p.TryGetProperty("split", out var s) || s.ValueKind != JsonValueKind.False;
                    prepend |= Str(p, "prepend_scheme") is "first" or "always" || Flag(p, "add_prefix_space");
                    break;
                default: throw new ModelFormatException(path, $"unsupported tokenizer.json pre-tokenizer {p.GetRawText()}");
            }

        if (byteLevel)
        {
            if (prepend || replace || metaspace)
                throw new ModelFormatException(path, "unsupported tokenizer.json: byte-level BPE combined with SentencePiece-style whitespace");
            if (pattern == null) return new Shape(true, false, false, null, null);
            var pre = PreTokenizer.FromHfPattern(pattern);
            PreTokenizerSettings? settings = pre.Name is "custom" ? null : PreTokenizer.ForGguf(pre.Name == "gpt2" ? "gpt-2" : pre.Name);
            return new Shape(true, false, false, settings, settings == null ? pre : null);
        }
        if (pattern != null) throw new ModelFormatException(path, "unsupported tokenizer.json: a Split pre-tokenizer without ByteLevel");
        // SentencePiece-style: whitespace escaped to U+2581 by Replace or Metaspace
        if (!(replace || metaspace))
            throw new ModelFormatException(path, "unsupported tokenizer.json: neither byte-level nor SentencePiece-style (no ByteLevel, Metaspace or Replace ' ' -> '\u2581')");
        PreTokenizer? split = metaspace && metaspaceSplit ? new PreTokenizer("metaspace", "[^\u2581]+|\u2581[^\u2581]*") : null;
        return new Shape(false, true, prepend, null, split);
    }

    // A single object or a Sequence of them.
    private static IEnumerable<JsonElement> Flatten(JsonElement root, string key, string listKey)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind != JsonValueKind.Object) yield break;
        if (Str(e, "type") == "Sequence" && e.TryGetProperty(listKey, out var list))
        {
            foreach (var item in list.EnumerateArray()) yield return item;
        }
        else yield return e;
    }

    // TemplateProcessing whose single-sequence template starts with a special token: that token is BOS, added.
    private static (int? Bos, bool AddsBos) ReadTemplate(JsonElement root, Dictionary<string, int> ids)
    {
        foreach (var p in Flatten(root, "post_processor", "processors"))
        {
            if (Str(p, "type") != "TemplateProcessing" || !p.TryGetProperty("single", out var single)) continue;
            foreach (var item in single.EnumerateArray())
            {
                if (item.TryGetProperty("SpecialToken", out var st) && Str(st, "id") is string text && ids.TryGetValue(text, out int id))
                    return (id, true);
                break;
            }
        }
        return (null, false);
    }

    private static string[] ReadMerges(string path, JsonElement model)
    {
        if (!model.TryGetProperty("merges", out var merges) || merges.ValueKind != JsonValueKind.Array)
            throw new ModelFormatException(path, "no tokenizer: tokenizer.json BPE model has no merges");
        var result = new string[merges.GetArrayLength()];
        int i = 0;
        foreach (var m in merges.EnumerateArray())
            result[i++] = m.ValueKind == JsonValueKind.Array
                ? $"{m[0].GetString()} {m[1].GetString()}"
                : m.GetString() ?? "";
        return result;
    }

    // llama.cpp's converter (does_token_look_special) makes these control tokens even when not marked special.
    private static bool LooksSpecial(string t) =>
        t is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]" ||
        (t.StartsWith("<|", StringComparison.Ordinal) && t.EndsWith("|>", StringComparison.Ordinal)) ||
        (t.StartsWith("<\uFF5C", StringComparison.Ordinal) && t.EndsWith("\uFF5C>", StringComparison.Ordinal)) ||
        (t.StartsWith("<unused", StringComparison.Ordinal) && t.EndsWith('>'));

    private static string? Str(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool Flag(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.True;
}
