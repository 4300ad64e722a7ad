using System.Text;
using Item = Tessera.Constraints.GrammarBuilder.Item;

namespace Tessera.Constraints;

/// <summary>
/// llama.cpp's GBNF (grammars/README.md there): <c>name ::= alternatives</c>, one rule per line (a rule continues
/// over lines inside parentheses and after <c>|</c>); terminals <c>"literal"</c>, <c>[a-z]</c>, <c>[^"\\]</c> and
/// <c>.</c> (any character), with escapes <c>\n \t \r \\ \" \] \xHH \uHHHH \UHHHHHHHH</c>; groups <c>( )</c>;
/// repetition <c>* + ? {m} {m,} {m,n}</c>; <c># comments</c>. Code points are matched as their UTF-8 bytes.
/// </summary>
internal sealed class Gbnf
{
    private readonly string _text, _source;
    private readonly GrammarBuilder _b;
    private int _pos, _line = 1;
    private string _rule = "";

    private Gbnf(string text, string source)
    {
        _text = text;
        _source = source;
        _b = new GrammarBuilder(source);
    }

    public static Grammar Parse(string text, string source)
    {
        var p = new Gbnf(text, source);
        p.ParseRules();
        return p._b.Build("root");
    }

    private FormatException Error(string what) => new($"{_source}: line {_line}{(_rule.Length > 0 ? $", rule '{_rule}'" : "")}: {what}");

    private bool AtEnd => _pos >= _text.Length;
    private char Peek => _pos < _text.Length ? _text[_pos] : '\0';

    private void Space(bool newlines)
    {
        while (!AtEnd)
        {
            char c = _text[_pos];
            if (c is ' ' or '\t') _pos++;
            else if (c == '#') { while (!AtEnd && _text[_pos] != '\n') _pos++; }
            else if (newlines && c is '\n' or '\r') { if (c == '\n') _line++; _pos++; }
            else break;
        }
    }

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';

    private string Name()
    {
        int start = _pos;
        while (!AtEnd && IsNameChar(_text[_pos])) _pos++;
        if (_pos == start) throw Error(AtEnd ? "expected a rule name, found the end" : $"expected a rule name, found '{Peek}'");
        return _text[start.._pos];
    }

    private void ParseRules()
    {
        Space(true);
        if (AtEnd) throw Error("the grammar is empty (it needs at least 'root ::= ...')");
        while (!AtEnd)
        {
            _rule = "";
            string name = Name();
            _rule = name;
            Space(false);
            if (!_text.AsSpan(_pos).StartsWith("::=")) throw Error($"expected '::=' after '{name}'");
            _pos += 3;
            Space(true);
            int id = _b.RuleId(name, _line);
            if (_b.IsDefined(id)) throw Error($"rule '{name}' is defined twice");
            _b.Define(id, Alternatives(nested: false));
            if (!AtEnd && Peek is not ('\n' or '\r')) throw Error($"unexpected '{Peek}'");
            Space(true);
        }
    }

    private List<List<Item>> Alternatives(bool nested)
    {
        var alts = new List<List<Item>> { Sequence(nested) };
        while (Peek == '|')
        {
            _pos++;
            Space(true);
            alts.Add(Sequence(nested));
        }
        return alts;
    }

    private List<Item> Sequence(bool nested)
    {
        var seq = new List<Item>();
        int atom = -1;  // where the last atom starts in seq (a repetition applies to it)
        while (!AtEnd)
        {
            char c = Peek;
            if (c == '"')
            {
                _pos++;
                atom = seq.Count;
                while (Peek != '"')
                {
                    if (AtEnd || Peek == '\n') throw Error("unterminated string literal");
                    AppendUtf8(seq, Char());
                }
                _pos++;
            }
            else if (c == '[')
            {
                _pos++;
                atom = seq.Count;
                seq.Add(Class());
            }
            else if (c == '.')
            {
                _pos++;
                atom = seq.Count;
                seq.Add(_b.CodePoints([(0, 0x10FFFF)], _rule));
            }
            else if (c == '(')
            {
                _pos++;
                Space(true);
                var inner = Alternatives(nested: true);
                if (Peek != ')') throw Error(AtEnd ? "missing ')'" : $"expected ')', found '{Peek}'");
                _pos++;
                atom = seq.Count;
                seq.Add(new Item(true, _b.NewRule(_rule, inner)));
            }
            else if (IsNameChar(c))
            {
                int save = _pos, line = _line;
                string name = Name();
                // A name followed by ::= starts the next rule (a rule ends at a newline, so only after one).
                int after = _pos;
                Space(false);
                if (_text.AsSpan(_pos).StartsWith("::=")) { _pos = save; _line = line; break; }
                _pos = after;
                atom = seq.Count;
                seq.Add(new Item(true, _b.RuleId(name, _line)));
            }
            else if (c is '*' or '+' or '?' or '{')
            {
                if (atom < 0) throw Error($"'{c}' must follow something to repeat");
                Repeat(seq, atom);
            }
            else break;
            Space(nested);
        }
        return seq;
    }

    /// <summary>Rewrites seq[atom..] followed by a repetition operator into rules.</summary>
    private void Repeat(List<Item> seq, int atom)
    {
        var x = seq.GetRange(atom, seq.Count - atom);
        seq.RemoveRange(atom, seq.Count - atom);
        int min, max; // max -1 = unbounded
        char op = Peek;
        _pos++;
        if (op == '*') (min, max) = (0, -1);
        else if (op == '+') (min, max) = (1, -1);
        else if (op == '?') (min, max) = (0, 1);
        else
        {
            min = Integer();
            max = min;
            if (Peek == ',')
            {
                _pos++;
                max = Peek == '}' ? -1 : Integer();
            }
            if (Peek != '}') throw Error("expected '}' to close a repetition");
            _pos++;
            if (max >= 0 && max < min) throw Error($"repetition {{{min},{max}}}: the maximum is below the minimum");
            if (min > 10_000 || max > 10_000) throw Error("repetition counts above 10000 are not supported");
        }
        for (int i = 0; i < min; i++) seq.AddRange(x);
        if (max < 0)
        {
            // star ::= x star | ""
            int star = _b.NewRule(_rule, []);
            _b.Define(star, [[.. x, new Item(true, star)], []]);
            seq.Add(new Item(true, star));
        }
        else if (max > min)
        {
            // opt_k ::= x opt_{k+1} | "" , nested (max - min) deep
            Item? tail = null;
            for (int k = 0; k < max - min; k++)
            {
                var alt = new List<Item>(x);
                if (tail is { } t) alt.Add(t);
                tail = new Item(true, _b.NewRule(_rule, [alt, []]));
            }
            seq.Add(tail!.Value);
        }
    }

    private int Integer()
    {
        Space(false);
        int start = _pos;
        while (char.IsAsciiDigit(Peek)) _pos++;
        if (start == _pos || !int.TryParse(_text.AsSpan(start, _pos - start), out int v)) throw Error("expected a number in a repetition");
        Space(false);
        return v;
    }

    private Item Class()
    {
        bool negate = Peek == '^';
        if (negate) _pos++;
        var ranges = new List<(int Lo, int Hi)>();
        while (Peek != ']')
        {
            if (AtEnd || Peek == '\n') throw Error("unterminated character class");
            int lo = Char(), hi = lo;
            if (Peek == '-' && _pos + 1 < _text.Length && _text[_pos + 1] != ']')
            {
                _pos++;
                if (AtEnd || Peek == '\n') throw Error("unterminated character class");
                hi = Char();
                if (hi < lo) throw Error($"character range {Show(lo)}-{Show(hi)} is backwards");
            }
            ranges.Add((lo, hi));
        }
        _pos++;
        if (negate) ranges = Complement(ranges);
        return _b.CodePoints(ranges, _rule);
    }

    private static string Show(int c) => c is >= 0x20 and < 0x7F ? ((char)c).ToString() : $"U+{c:X4}";

    /// <summary>A GBNF string literal for <paramref name="text"/>.</summary>
    internal static string Literal(string text)
    {
        var sb = new StringBuilder("\"");
        foreach (var rune in text.EnumerateRunes()) sb.Append(Escaped(rune.Value, inClass: false));
        return sb.Append('"').ToString();
    }

    /// <summary>A code point written inside a GBNF class.</summary>
    internal static string ClassChar(int c) => Escaped(c, inClass: true);

    private static string Escaped(int c, bool inClass) => c switch
    {
        '"' when !inClass => "\\\"",
        '\\' => "\\\\",
        ']' or '-' or '^' or '[' when inClass => "\\" + (char)c,
        < 0x20 or 0x7F => $"\\x{c:X2}",
        < 0x7F => ((char)c).ToString(),
        <= 0xFFFF => $"\\u{c:X4}",
        _ => $"\\U{c:X8}",
    };

    internal static List<(int Lo, int Hi)> Complement(List<(int Lo, int Hi)> ranges)
    {
        var sorted = ranges.OrderBy(r => r.Lo).ToList();
        var result = new List<(int, int)>();
        int next = 0;
        foreach (var (lo, hi) in sorted)
        {
            if (lo > next) result.Add((next, lo - 1));
            next = Math.Max(next, hi + 1);
        }
        if (next <= 0x10FFFF) result.Add((next, 0x10FFFF));
        return result;
    }

    /// <summary>One code point of a literal or class, escapes decoded.</summary>
    private int Char()
    {
        char c = _text[_pos++];
        if (c != '\\')
        {
            if (char.IsHighSurrogate(c) && _pos < _text.Length && char.IsLowSurrogate(_text[_pos]))
                return char.ConvertToUtf32(c, _text[_pos++]);
            return c;
        }
        if (AtEnd) throw Error("a '\\' at the end");
        char e = _text[_pos++];
        switch (e)
        {
            case 'n': return '\n';
            case 't': return '\t';
            case 'r': return '\r';
            case 'x': return Hex(2);
            case 'u': return Hex(4);
            case 'U': return Hex(8);
            case '\\' or '"' or '[' or ']' or '-' or '^' or '/' or '.': return e;
            default: throw Error($"unknown escape '\\{e}'");
        }
    }

    private int Hex(int digits)
    {
        if (_pos + digits > _text.Length || !int.TryParse(_text.AsSpan(_pos, digits), System.Globalization.NumberStyles.HexNumber, null, out int v) || v > 0x10FFFF)
            throw Error($"expected {digits} hex digits after the escape");
        _pos += digits;
        return v;
    }

    private void AppendUtf8(List<Item> seq, int codePoint)
    {
        Span<byte> buf = stackalloc byte[4];
        int n = new Rune(codePoint is >= 0xD800 and <= 0xDFFF ? 0xFFFD : codePoint).EncodeToUtf8(buf);
        for (int i = 0; i < n; i++) seq.Add(_b.Byte(buf[i]));
    }
}