namespace Tessera.Tokenization;

/// <summary>
/// GPT-2's reversible map between bytes and printable characters (<c>bytes_to_unicode</c>): byte-level BPE
/// vocabularies store every token as these characters, so a space is <c>Ġ</c> (U+0120) and a newline <c>Ċ</c>.
/// Bytes 33..126, 161..172 and 174..255 map to the character of the same code; the other 68 bytes map to
/// U+0100.. in byte order.
/// </summary>
internal static class ByteLevel
{
    private static readonly char[] ByteToChar = BuildForward();
    private static readonly short[] CharToByte = BuildReverse();

    /// <summary>The character byte <paramref name="b"/> is written as.</summary>
    public static char Encode(byte b) => ByteToChar[b];

    /// <summary>The byte character <paramref name="c"/> stands for, or -1 when it is not one of the 256.</summary>
    public static int Decode(char c) => c < CharToByte.Length ? CharToByte[c] : -1;

    private static char[] BuildForward()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
            map[b] = printable ? (char)b : (char)(256 + next++);
        }
        return map;
    }

    private static short[] BuildReverse()
    {
        var reverse = new short[256 + 68];
        Array.Fill(reverse, (short)-1);
        for (int b = 0; b < 256; b++) reverse[ByteToChar[b]] = (short)b;
        return reverse;
    }
}
