namespace Tessera.Generation;

/// <summary>
/// Holds back text that might be the start of a stop string, so that a stop string is never streamed out, and
/// reports when one is complete. Besides the request's stop strings it may watch for end markers: the text of the
/// model's end-of-generation tokens spelled out in ordinary tokens (TinyStories writes "&lt;|end_story|&gt;" as four
/// text pieces before its EOS token; llama.cpp prints them), which end generation as the token itself does.
/// </summary>
internal sealed class StopStringFilter
{
    private readonly string[] _stops;   // the request's stop strings, then the end markers
    private readonly int _userStops;
    private string _held = "";

    /// <summary>A filter for <paramref name="stops"/> and, after them, <paramref name="endMarkers"/>.</summary>
    public StopStringFilter(IReadOnlyList<string> stops, IReadOnlyList<string>? endMarkers = null)
    {
        _stops = [.. stops, .. endMarkers ?? []];
        _userStops = stops.Count;
    }

    /// <summary>The filter for <paramref name="options"/>: its stop strings, and the end markers of
    /// <paramref name="tokenizer"/> unless generation runs past end-of-generation or shows special text.</summary>
    public static StopStringFilter For(GenerationOptions options, Tokenization.Tokenizer tokenizer) =>
        new(options.StopStrings,
            // Under a grammar the grammar says where the output ends (a marker's text may be inside a JSON string).
            options.StopAtEndOfGeneration && !options.RenderSpecial && options.Constraint is null ? tokenizer.EndOfGenerationTexts : null);

    /// <summary>Whether the stop found was an end marker (generation ended as at an end-of-generation token).</summary>
    public bool EndedGeneration { get; private set; }

    /// <summary>Adds text; returns what can be released, and whether a stop string was found (text before it is released).</summary>
    public (string Release, bool Stopped) Add(string text)
    {
        if (_stops.Length == 0) return (text, false);
        string s = _held + text;
        int first = -1, which = -1;
        for (int k = 0; k < _stops.Length; k++)
        {
            int i = s.IndexOf(_stops[k], StringComparison.Ordinal);
            if (i >= 0 && (first < 0 || i < first)) { first = i; which = k; }
        }
        if (first >= 0)
        {
            _held = "";
            EndedGeneration = which >= _userStops;
            return (s[..first], true);
        }
        // Keep the longest suffix that is a prefix of some stop string.
        int keep = 0;
        foreach (var stop in _stops)
            for (int len = Math.Min(stop.Length - 1, s.Length); len > keep; len--)
                if (string.CompareOrdinal(s, s.Length - len, stop, 0, len) == 0) { keep = len; break; }
        _held = s[(s.Length - keep)..];
        return (s[..(s.Length - keep)], false);
    }

    /// <summary>Releases what was held at the end of generation.</summary>
    public string Flush() { string h = _held; _held = ""; return h; }
}
