using System.Globalization;

namespace Tessera.Tokenization;

/// <summary>Byte-fallback tokens, written <c>&lt;0xNN&gt;</c>.</summary>
internal static class ByteTokens
{
    /// <summary>Whether <paramref name="text"/> has the form <c>&lt;0xNN&gt;</c> (hex digits of either case).</summary>
    public static bool IsByteToken(string text) =>
        text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal) && text[5] == '>' &&
        char.IsAsciiHexDigit(text[3]) && char.IsAsciiHexDigit(text[4]);

    /// <summary>The byte a <c>&lt;0xNN&gt;</c> token stands for (llama.cpp reads the two characters at 3..4 as hex).</summary>
    public static byte Parse(string text) =>
        text.Length >= 5 && byte.TryParse(text.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b) ? b : (byte)0;
}
