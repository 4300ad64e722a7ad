using System.Text;
using Tessera.Tokenization;

namespace Tessera.Generation;

/// <summary>
/// Turns a stream of token ids into text, emitting only complete UTF-8 characters: a character split over
/// byte-fallback tokens is held until its last byte arrives.
/// </summary>
/// <param name="tokenizer">The vocabulary.</param>
/// <param name="renderSpecial">Render control tokens as their text (<c>--special</c>); by default they add nothing.</param>
internal sealed class Utf8StreamDecoder(Tokenizer tokenizer, bool renderSpecial = false)
{
    private readonly List<byte> _pending = new(16);
    private readonly Decoder _utf8 = new UTF8Encoding(false, false).GetDecoder();
    private char[] _chars = new char[64];

    /// <summary>Adds a token; returns the text that became complete (possibly empty).</summary>
    public string Add(int token)
    {
        _pending.Clear();
        tokenizer.AppendTokenBytes(token, _pending, renderSpecial);
        if (_pending.Count == 0) return "";
        var bytes = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending);
        int need = _utf8.GetCharCount(bytes, flush: false);
        if (_chars.Length < need) _chars = new char[Math.Max(need, _chars.Length * 2)];
        int n = _utf8.GetChars(bytes, _chars, flush: false);
        return n == 0 ? "" : new string(_chars, 0, n);
    }

    /// <summary>Whatever is left at the end (an incomplete character becomes U+FFFD).</summary>
    public string Flush()
    {
        int n = _utf8.GetChars(ReadOnlySpan<byte>.Empty, _chars, flush: true);
        return n == 0 ? "" : new string(_chars, 0, n);
    }
}
