using System.Globalization;
using System.Text;

namespace Tessera.Constraints;

/// <summary>
/// Translates a regular expression to GBNF: literals, <c>.</c> (any character but a newline), classes (<c>[a-z]</c>,
/// <c>[^...]</c>, <c>\d \w \s</c> and their negations, also inside classes), groups <c>( )</c> and <c>(?: )</c>,
/// alternation, and the quantifiers <c>* + ? {m} {m,} {m,n}</c> (lazy forms match the same strings). The whole string
/// must match (a leading <c>^</c> and trailing <c>$</c> are accepted and change nothing). Backreferences, lookaround
/// and word boundaries are not regular and are refused by name. In JSON-string mode (a schema's <c>pattern</c>) the
/// characters JSON must escape are produced in their escaped form, so the string stays valid JSON.
/// </summary>
internal sealed class RegexGrammar
{
    private readonly string _re, _source;
    private readonly bool _json;
    private int _pos;

    private RegexGrammar(string re, string source, bool json) { _re = re; _source = source; _json = json; }

    public static string ToGbnf(string pattern, string source) => $"root ::= {ToExpression(pattern, source, json: false)}\n";

    /// <summary>The pattern as one GBNF expression (for embedding in a larger grammar).</summary>
    public static string ToExpression(string pattern, string source, bool json)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        var p = new RegexGrammar(pattern, source, json);
        if (p.Peek == '^') p._pos++;
        string e = p.Alternation();
        if (p._pos < pattern.Length)
            throw p.Error(pattern[p._pos] == ')' ? "unbalanced ')'" : $"unexpected '{pattern[p._pos]}'");
        return e;
    }

    private FormatException Error(string what) => new($"{_source}: {what} at position {_pos} of /{_re}/");
    private char Peek => _pos < _re.Length ? _re[_pos] : '\0';
    private bool AtEnd => _pos >= _re.Length;

    private string Alternation()
    {
        var alts = new List<string> { Concatenation() };
        while (Peek == '|') { _pos++; alts.Add(Concatenation()); }
        return alts.Count == 1 ? alts[0] : "(" + string.Join(" | ", alts) + ")";
    }

    private string Concatenation()
    {
        var parts = new List<string>();
        while (!AtEnd && Peek is not ('|' or ')'))
        {
            if (Peek == '$' && _pos == _re.Length - 1) { _pos++; break; }
            string atom = Atom();
            while (!AtEnd && Peek is '*' or '+' or '?' or '{')
            {
                string q = Quantifier();
                if (q.Length == 0) break;
                atom = "(" + atom + ")" + q;
            }
            parts.Add(atom);
        }
        return parts.Count == 0 ? "\"\"" : string.Join(" ", parts);
    }

    private string Quantifier()
    {
        char c = Peek;
        string q;
        if (c != '{') { _pos++; q = c.ToString(); }
        else
        {
            int close = _re.IndexOf('}', _pos);
            string body = close < 0 ? "" : _re[(_pos + 1)..close];
            var parts = body.Split(',');
            bool ok = parts.Length is 1 or 2 && parts[0].Length > 0 && parts.All(p => p.Length == 0 || p.All(char.IsAsciiDigit)) && (parts.Length == 1 || parts[1].Length == 0 || int.Parse(parts[1], CultureInfo.InvariantCulture) >= int.Parse(parts[0], CultureInfo.InvariantCulture));
            if (!ok) throw Error($"bad repetition '{{{body}}}'");
            _pos = close + 1;
            q = "{" + body + "}";
        }
        if (Peek is '?' or '+') _pos++;  // lazy and possessive forms: the same strings
        return q;
    }

    private string Atom()
    {
        char c = _re[_pos++];
        switch (c)
        {
            case '(':
                if (Peek == '?')
                {
                    if (_pos + 1 < _re.Length && _re[_pos + 1] == ':') _pos += 2;
                    else throw Error("lookaround and named or flagged groups are not supported (only ( ) and (?: ))");
                }
                string inner = Alternation();
                if (Peek != ')') throw Error("missing ')'");
                _pos++;
                return "(" + inner + ")";
            case '[': return Class();
            case '.': return Chars([(0, 9), (11, 0x10FFFF)]);
            case '^': throw Error("'^' is only supported at the start");
            case '$': throw Error("'$' is only supported at the end");
            case '*' or '+' or '?' or '{': throw Error($"'{c}' has nothing to repeat");
            case '\\':
                var shorthand = Shorthand();
                if (shorthand is not null) return Chars(shorthand);
                return Chars([(Escape(), Escape(last: true))]);
            default:
                int cp = c;
                if (char.IsHighSurrogate(c) && !AtEnd && char.IsLowSurrogate(Peek)) cp = char.ConvertToUtf32(c, _re[_pos++]);
                return Chars([(cp, cp)]);
        }
    }

    // The code point of the escape just read by Shorthand's caller (Escape reads it, the second call returns it).
    private int _escaped;

    private int Escape(bool last = false)
    {
        if (last) return _escaped;
        if (AtEnd) throw Error("a '\\' at the end");
        char e = _re[_pos++];
        _escaped = e switch
        {
            'n' => '\n', 't' => '\t', 'r' => '\r', 'f' => '\f', 'v' => '\v', '0' => 0,
            'x' => Hex(2), 'u' => Hex(4),
            'b' or 'B' => throw Error("word boundaries (\\b) are not supported"),
            >= '1' and <= '9' => throw Error("backreferences are not supported (not a regular language)"),
            _ when char.IsAsciiLetterOrDigit(e) => throw Error($"unknown escape '\\{e}'"),
            _ => e,
        };
        return _escaped;
    }

    private int Hex(int digits)
    {
        if (_pos + digits > _re.Length || !int.TryParse(_re.AsSpan(_pos, digits), NumberStyles.HexNumber, null, out int v))
            throw Error($"expected {digits} hex digits");
        _pos += digits;
        return v;
    }

    /// <summary>\d \w \s and negations: their ranges; null (nothing read) for any other escape.</summary>
    private List<(int, int)>? Shorthand()
    {
        List<(int, int)>? r = Peek switch
        {
            'd' or 'D' => [('0', '9')],
            'w' or 'W' => [('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
            's' or 'S' => [('\t', '\r'), (' ', ' ')],
            _ => null,
        };
        if (r is null) return null;
        bool negate = char.IsUpper(Peek);
        _pos++;
        return negate ? Gbnf.Complement(r) : r;
    }

    private string Class()
    {
        bool negate = Peek == '^';
        if (negate) _pos++;
        var ranges = new List<(int Lo, int Hi)>();
        bool first = true;
        while (first || Peek != ']')
        {
            if (AtEnd) throw Error("unterminated character class");
            first = false;
            int lo;
            if (Peek == '\\')
            {
                _pos++;
                if (Shorthand() is { } s) { ranges.AddRange(s); continue; }
                lo = Escape();
            }
            else lo = CodePoint();
            int hi = lo;
            if (Peek == '-' && _pos + 1 < _re.Length && _re[_pos + 1] != ']')
            {
                _pos++;
                if (Peek == '\\') { _pos++; hi = Escape(); }
                else hi = CodePoint();
                if (hi < lo) throw Error("a backwards range in a class");
            }
            ranges.Add((lo, hi));
        }
        _pos++;
        return Chars(negate ? Gbnf.Complement(ranges) : ranges);
    }

    private int CodePoint()
    {
        char c = _re[_pos++];
        if (char.IsHighSurrogate(c) && !AtEnd && char.IsLowSurrogate(Peek)) return char.ConvertToUtf32(c, _re[_pos++]);
        return c;
    }

    /// <summary>A GBNF expression matching one character of <paramref name="ranges"/> (in JSON mode, the characters
    /// JSON escapes as their escape sequences).</summary>
    private string Chars(List<(int Lo, int Hi)> ranges)
    {
        var alts = new List<string>();
        if (_json)
        {
            var special = new List<int>();
            var plain = new List<(int, int)>();
            foreach (var (lo, hi) in ranges)
            {
                for (int c = lo; c <= Math.Min(hi, 0x1F); c++) special.Add(c);
                int a = Math.Max(lo, 0x20);
                foreach (int s in new[] { '"', '\\' })
                    if (a <= s && s <= hi) { if (a < s) plain.Add((a, s - 1)); special.Add(s); a = s + 1; }
                if (a <= hi) plain.Add((a, hi));
            }
            foreach (int s in special.Distinct().Order())
                alts.Add(Gbnf.Literal(s switch
                {
                    '"' => "\\\"", '\\' => "\\\\", '\n' => "\\n", '\t' => "\\t", '\r' => "\\r", '\b' => "\\b", '\f' => "\\f",
                    _ => $"\\u{s:x4}",
                }));
            ranges = plain;
        }
        if (ranges.Count > 0 || alts.Count == 0)
        {
            var sb = new StringBuilder("[");
            foreach (var (lo, hi) in ranges)
            {
                sb.Append(Gbnf.ClassChar(lo));
                if (hi > lo) sb.Append('-').Append(Gbnf.ClassChar(hi));
            }
            if (ranges.Count == 0) sb.Append("^\\x00-\\U0010FFFF");  // an empty class: matches nothing
            alts.Insert(0, sb.Append(']').ToString());
        }
        return alts.Count == 1 ? alts[0] : "(" + string.Join(" | ", alts) + ")";
    }
}
