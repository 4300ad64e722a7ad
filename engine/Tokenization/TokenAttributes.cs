namespace Tessera.Tokenization;

/// <summary>
/// What kind of token an id is, as llama.cpp's <c>llama_token_attr</c> (same bit values). GGUF files store a token
/// type per token (<c>tokenizer.ggml.token_type</c>) that maps onto one of these; LSTRIP/RSTRIP come from
/// tokenizer.json added tokens.
/// </summary>
[Flags]
public enum TokenAttributes
{
    /// <summary>No type recorded (llama.cpp renders such tokens as nothing).</summary>
    Undefined = 0,
    /// <summary>The unknown token (<c>&lt;unk&gt;</c>).</summary>
    Unknown = 1 << 0,
    /// <summary>Reserved, never produced by the tokenizer.</summary>
    Unused = 1 << 1,
    /// <summary>An ordinary piece of text.</summary>
    Normal = 1 << 2,
    /// <summary>A control token (BOS, EOS, chat markers): only matched in text when special tokens are parsed.</summary>
    Control = 1 << 3,
    /// <summary>A user-defined added token: always matched in text, rendered verbatim.</summary>
    UserDefined = 1 << 4,
    /// <summary>A byte-fallback token <c>&lt;0xNN&gt;</c> standing for one raw byte.</summary>
    Byte = 1 << 5,
    /// <summary>Whitespace to the left of this special token is swallowed when it is matched in text.</summary>
    LeftStrip = 1 << 7,
    /// <summary>Whitespace to the right of this special token is swallowed when it is matched in text.</summary>
    RightStrip = 1 << 8,
}

internal static class TokenTypes
{
    /// <summary>Maps a GGUF / SentencePiece token type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    /// 6 byte; anything else undefined) to attributes, as llama.cpp's vocabulary loader does.</summary>
    public static TokenAttributes FromTokenType(int type) => type switch
    {
        1 => TokenAttributes.Normal,
        2 => TokenAttributes.Unknown,
        3 => TokenAttributes.Control,
        4 => TokenAttributes.UserDefined,
        5 => TokenAttributes.Unused,
        6 => TokenAttributes.Byte,
        _ => TokenAttributes.Undefined,
    };
}
