namespace Tessera.Generation;

/// <summary>
/// Holds back text that might be the start of a stop string, so that a stop string is never streamed out, and
/// reports when one is complete.
/// </summary>
internal sealed class StopStringFilter(IReadOnlyList<string> stops)
{
    private string _held = "";

    /// <summary>Adds text; returns what can be released, and whether a stop string was found (text before it is released).</summary>
    public (string Release, bool Stopped) Add(string text)
    {
        if (stops.Count == 0) return (text, false);
        string s = _held + text;
        int first = -1;
        foreach (var stop in stops)
        {
            int i = s.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0 && (first < 0 || i < first)) first = i;
        }
        if (first >= 0) { _held = ""; return (s[..first], true); }
        // Keep the longest suffix that is a prefix of some stop string.
        int keep = 0;
        foreach (var stop in stops)
            for (int len = Math.Min(stop.Length - 1, s.Length); len > keep; len--)
                if (string.CompareOrdinal(s, s.Length - len, stop, 0, len) == 0) { keep = len; break; }
        _held = s[(s.Length - keep)..];
        return (s[..(s.Length - keep)], false);
    }

    /// <summary>Releases what was held at the end of generation.</summary>
    public string Flush() { string h = _held; _held = ""; return h; }
}
