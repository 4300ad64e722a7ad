using Tessera.Chat;

namespace Tessera.Cli.Server;

/// <summary>
/// Turns one choice's streamed text into OpenAI's chat deltas when the request has tools: plain content, or a tool
/// call whose first delta carries its id and name and whose later deltas carry the arguments as string fragments
/// (what the official SDKs accumulate). Under the call grammar a reply that starts with '&lt;' is a call and any other
/// is text, so the first character decides; the call's fixed opening and closing are never sent as arguments.
/// </summary>
internal sealed class ToolCallStream(IReadOnlyList<ToolDefinition> tools)
{
    private static readonly int CloseLength = ("}" + ToolCallFormat.Close).Length;
    private readonly System.Text.StringBuilder _buffer = new();
    private int _mode;            // 0 undecided, 1 text, 2 call
    private string? _prefix;      // the call's opening up to its arguments, once known
    private int _sent;            // argument characters sent

    /// <summary>The call's id (made once, used in the first delta and the whole response).</summary>
    public string Id { get; } = "call_" + Guid.NewGuid().ToString("N")[..24];
    /// <summary>Whether the reply turned out to be a call.</summary>
    public bool IsCall => _mode == 2;

    /// <summary>What this text adds: content to send, and for a call the name (once) and an arguments fragment.</summary>
    public (string? Content, string? Name, string? Arguments) Add(string text, bool final)
    {
        if (_mode == 1) return (text, null, null);
        _buffer.Append(text);
        if (_mode == 0)
        {
            if (_buffer.Length == 0) return (null, null, null);
            if (_buffer[0] != '<')
            {
                _mode = 1;
                string all = _buffer.ToString();
                _buffer.Clear();
                return (all, null, null);
            }
            _mode = 2;
        }
        string s = _buffer.ToString();
        string? name = null;
        if (_prefix is null)
        {
            foreach (var t in tools)
            {
                string p = ToolCallFormat.CallPrefix(t.Name);
                if (s.StartsWith(p, StringComparison.Ordinal)) { _prefix = p; name = t.Name; break; }
            }
            if (_prefix is null) return (null, null, null);
        }
        // Arguments run to the closing "}</tool_call>", which is held back until the end.
        int end = s.EndsWith("}" + ToolCallFormat.Close, StringComparison.Ordinal) ? s.Length - CloseLength
            : final ? s.Length : Math.Max(_prefix.Length, s.Length - CloseLength);
        string fragment = end > _prefix.Length + _sent ? s[(_prefix.Length + _sent)..end] : "";
        _sent += fragment.Length;
        return (null, name, name is not null || fragment.Length > 0 ? fragment : null);
    }
}
