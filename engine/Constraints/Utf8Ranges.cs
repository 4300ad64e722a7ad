namespace Tessera.Constraints;

/// <summary>Splits a range of code points into ranges of UTF-8 byte sequences (Russ Cox's construction, as in RE2
/// and Rust's regex-syntax): each result is a sequence of byte ranges whose product is exactly the encodings of a
/// sub-range, so a character class can be matched one byte at a time.</summary>
internal static class Utf8Ranges
{
    public static List<List<(byte Lo, byte Hi)>> Split(int lo, int hi)
    {
        var result = new List<List<(byte, byte)>>();
        // Surrogates have no UTF-8 encoding.
        if (lo <= 0xDFFF && hi >= 0xD800)
        {
            if (lo < 0xD800) Add(lo, 0xD7FF, result);
            if (hi > 0xDFFF) Add(0xE000, hi, result);
        }
        else Add(lo, hi, result);
        return result;
    }

    private static void Add(int lo, int hi, List<List<(byte, byte)>> result)
    {
        if (lo > hi) return;
        foreach (int limit in new[] { 0x7F, 0x7FF, 0xFFFF })
            if (lo <= limit && hi > limit)
            {
                Add(lo, limit, result);
                Add(limit + 1, hi, result);
                return;
            }
        int n = Length(lo);
        for (int i = 1; i < n; i++)
        {
            int m = (1 << (6 * i)) - 1;
            if ((lo & ~m) != (hi & ~m))
            {
                if ((lo & m) != 0) { Add(lo, lo | m, result); Add((lo | m) + 1, hi, result); return; }
                if ((hi & m) != m) { Add(lo, (hi & ~m) - 1, result); Add(hi & ~m, hi, result); return; }
            }
        }
        Span<byte> a = stackalloc byte[4], b = stackalloc byte[4];
        Encode(lo, a);
        Encode(hi, b);
        var seq = new List<(byte, byte)>(n);
        for (int i = 0; i < n; i++) seq.Add((a[i], b[i]));
        result.Add(seq);
    }

    private static int Length(int c) => c <= 0x7F ? 1 : c <= 0x7FF ? 2 : c <= 0xFFFF ? 3 : 4;

    private static void Encode(int c, Span<byte> o)
    {
        switch (Length(c))
        {
            case 1: o[0] = (byte)c; break;
            case 2: o[0] = (byte)(0xC0 | (c >> 6)); o[1] = (byte)(0x80 | (c & 0x3F)); break;
            case 3: o[0] = (byte)(0xE0 | (c >> 12)); o[1] = (byte)(0x80 | ((c >> 6) & 0x3F)); o[2] = (byte)(0x80 | (c & 0x3F)); break;
            default: o[0] = (byte)(0xF0 | (c >> 18)); o[1] = (byte)(0x80 | ((c >> 12) & 0x3F)); o[2] = (byte)(0x80 | ((c >> 6) & 0x3F)); o[3] = (byte)(0x80 | (c & 0x3F)); break;
        }
    }
}
