using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Tessera.Constraints;

/// <summary>
/// Translates a JSON Schema to GBNF, for the subset OpenAI's strict mode and llguidance/XGrammar accept: <c>type</c>
/// (also a list), <c>properties</c>, <c>required</c>, <c>additionalProperties: false</c>, <c>items</c>,
/// <c>minItems</c>/<c>maxItems</c>, <c>enum</c>, <c>const</c>, <c>anyOf</c>/<c>oneOf</c>, <c>$ref</c> into
/// <c>$defs</c>/<c>definitions</c> (recursion allowed), <c>minLength</c>/<c>maxLength</c>, <c>pattern</c> (matched
/// against the whole string), and <c>minimum</c>/<c>maximum</c> (and the exclusive forms) on integers, exactly.
/// Choices made where a schema leaves room: properties come in the schema's order (required ones always, optional ones
/// may be left out); an object without <c>properties</c> is any JSON object; <c>additionalProperties</c> absent means
/// none (as strict mode); whitespace is at most one space between tokens; a <c>\u</c> escape is never a lone surrogate (it would not decode); numbers have at most 16 digits before and
/// 15 after the point. Anything else (a keyword this does not implement, such as <c>format</c>, <c>allOf</c>,
/// <c>patternProperties</c> or bounds on a <c>number</c>) is refused with its name and path, never ignored.
/// </summary>
internal sealed class JsonSchemaGrammar
{
    private static readonly HashSet<string> Annotations = ["title", "description", "$schema", "$id", "$comment", "default", "examples", "strict", "name", "readOnly", "writeOnly", "deprecated"];

    /// <summary>The generic JSON rules every grammar from a schema can use.</summary>
    private const string Common = """
        ws ::= " "?
        json-value ::= json-object | json-array | json-string | json-number | "true" | "false" | "null"
        json-object ::= "{" ws ( json-string ws ":" ws json-value ( ws "," ws json-string ws ":" ws json-value )* )? ws "}"
        json-array ::= "[" ws ( json-value ( ws "," ws json-value )* )? ws "]"
        json-string ::= "\"" json-char* "\""
        json-char ::= [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" json-bmp )
        json-bmp ::= [0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}
        json-int ::= "-"? ( "0" | [1-9] [0-9]{0,15} )
        json-number ::= json-int ( "." [0-9]{1,15} )? ( [eE] [-+]? [0-9]{1,3} )?
        """;

    /// <summary>Any JSON object.</summary>
    public static string AnyObjectGbnf => "root ::= json-object\n" + Common + "\n";

    private JsonElement _root;
    private string _refScope = "";  // keeps the $refs of several schemas in one grammar apart
    private string _source;
    private readonly StringBuilder _rules = new();
    private readonly Dictionary<string, string> _refs = [];  // $ref -> its rule name
    private int _next;

    private JsonSchemaGrammar(JsonElement root, string source) { _root = root; _source = source; }

    public static string ToGbnf(string schema, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(schema); }
        catch (JsonException e) { throw new FormatException($"{source}: not valid JSON: {e.Message}"); }
        using (doc)
        {
            var g = new JsonSchemaGrammar(doc.RootElement, source);
            string root = g.Value(doc.RootElement, "#");
            return $"root ::= {root}\n{g._rules}{Common}\n";
        }
    }

    /// <summary>
    /// The grammar of one tool call, <c>&lt;tool_call&gt;{"name": "NAME", "arguments": ARGS}&lt;/tool_call&gt;</c>, with
    /// ARGS following the function's parameter schema (one alternative per tool); with <paramref name="allowText"/>,
    /// free text instead, which then may not start with '&lt;' (so the first character tells a call from an answer).
    /// </summary>
    public static string ToolCallGbnf(IReadOnlyList<(string Name, string Schema)> tools, bool allowText, string source)
    {
        var g = new JsonSchemaGrammar(default, source);
        var calls = new List<string>();
        for (int i = 0; i < tools.Count; i++)
        {
            string path = $"tools[{i}].function.parameters";
            JsonDocument doc;
            try { doc = JsonDocument.Parse(tools[i].Schema); }
            catch (JsonException e) { throw new FormatException($"{path}: not valid JSON: {e.Message}"); }
            using (doc)
            {
                g._root = doc.RootElement;
                g._refScope = i + ":";
                g._source = path;
                calls.Add($"{Gbnf.Literal(ToolCallPrefix(tools[i].Name))} {g.Value(doc.RootElement, "#")} \"}}\"");
            }
        }
        string call = $"\"<tool_call>\" ( {string.Join(" | ", calls)} ) \"</tool_call>\"";
        string root = allowText ? $"root ::= {call} | \"\" | [^<] [\\x00-\\U0010FFFF]*\n" : $"root ::= {call}\n";
        return root + g._rules + Common + "\n";
    }

    /// <summary>What a call to <paramref name="name"/> starts with after <c>&lt;tool_call&gt;</c>, up to its arguments.</summary>
    public static string ToolCallPrefix(string name) => $"{{\"name\": {JsonString(name)}, \"arguments\": ";

    private FormatException Error(string path, string what) => new($"{_source}: {path}: {what}");

    private string NewRule(string expression)
    {
        string name = $"s{_next++}";
        _rules.Append(name).Append(" ::= ").Append(expression).Append('\n');
        return name;
    }

    /// <summary>A GBNF expression for the values <paramref name="s"/> accepts.</summary>
    private string Value(JsonElement s, string path)
    {
        if (s.ValueKind == JsonValueKind.True) return "json-value";
        if (s.ValueKind == JsonValueKind.False) throw Error(path, "the schema false accepts no value");
        if (s.ValueKind != JsonValueKind.Object) throw Error(path, $"a schema must be an object or a boolean, not {s.ValueKind.ToString().ToLowerInvariant()}");
        var known = new HashSet<string> { "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
            "enum", "const", "anyOf", "oneOf", "$ref", "$defs", "definitions", "minLength", "maxLength", "pattern",
            "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "allOf" };
        foreach (var p in s.EnumerateObject())
            if (!known.Contains(p.Name) && !Annotations.Contains(p.Name))
                throw Error(path, $"'{p.Name}' is not supported (supported: type, properties, required, additionalProperties false, items, minItems, maxItems, enum, const, anyOf, oneOf, $ref, $defs, minLength, maxLength, pattern, minimum, maximum)");

        if (s.TryGetProperty("$ref", out var r)) return Ref(r, path);
        if (s.TryGetProperty("const", out var c)) return Gbnf.Literal(Compact(c));
        if (s.TryGetProperty("enum", out var e))
        {
            if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() == 0) throw Error(path + "/enum", "must be a non-empty array");
            return "(" + string.Join(" | ", e.EnumerateArray().Select(v => Gbnf.Literal(Compact(v)))) + ")";
        }
        foreach (string key in new[] { "anyOf", "oneOf" })
            if (s.TryGetProperty(key, out var any))
            {
                // oneOf: the alternatives a generator makes are meant to be exclusive; producing any of them is the rule.
                if (any.ValueKind != JsonValueKind.Array || any.GetArrayLength() == 0) throw Error($"{path}/{key}", "must be a non-empty array");
                return "(" + string.Join(" | ", any.EnumerateArray().Select((a, i) => Value(a, $"{path}/{key}/{i}"))) + ")";
            }
        if (s.TryGetProperty("allOf", out var all))
        {
            if (all.ValueKind == JsonValueKind.Array && all.GetArrayLength() == 1) return Value(all[0], path + "/allOf/0");
            throw Error(path + "/allOf", "'allOf' of more than one schema is not supported");
        }
        if (!s.TryGetProperty("type", out var type))
        {
            if (s.TryGetProperty("properties", out _)) return Object(s, path);
            if (s.TryGetProperty("items", out _)) return Array(s, path);
            return "json-value";
        }
        if (type.ValueKind == JsonValueKind.Array)
            return "(" + string.Join(" | ", type.EnumerateArray().Select(t => Typed(s, t.GetString() ?? "", path))) + ")";
        if (type.ValueKind != JsonValueKind.String) throw Error(path + "/type", "must be a string or an array of strings");
        return Typed(s, type.GetString()!, path);
    }

    private static readonly JsonWriterOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A JSON value as compact text (how enum and const values are written).</summary>
    private static string Compact(JsonElement v)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, Relaxed)) v.WriteTo(w);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static string JsonString(string text)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, Relaxed)) w.WriteStringValue(text);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private string Typed(JsonElement s, string type, string path) => type switch
    {
        "object" => Object(s, path),
        "array" => Array(s, path),
        "string" => String(s, path),
        "integer" => Integer(s, path),
        "number" => Number(s, path),
        "boolean" => "(\"true\" | \"false\")",
        "null" => "\"null\"",
        _ => throw Error(path + "/type", $"unknown type '{type}'"),
    };

    private string Ref(JsonElement r, string path)
    {
        string target = r.GetString() ?? throw Error(path + "/$ref", "must be a string");
        if (_refs.TryGetValue(_refScope + target, out string? rule)) return rule;
        JsonElement node = _root;
        if (target != "#")
        {
            if (!target.StartsWith("#/", StringComparison.Ordinal)) throw Error(path + "/$ref", $"'{target}': only references inside the schema (#/...) are supported");
            foreach (string part in target[2..].Split('/'))
            {
                string key = part.Replace("~1", "/").Replace("~0", "~");
                if (node.ValueKind != JsonValueKind.Object || !node.TryGetProperty(key, out node))
                    throw Error(path + "/$ref", $"'{target}' does not resolve");
            }
        }
        // Name the rule before translating the target, so that a recursive reference finds it.
        rule = $"s{_next++}";
        _refs[_refScope + target] = rule;
        string body = Value(node, target);
        _rules.Append(rule).Append(" ::= ").Append(body).Append('\n');
        return rule;
    }

    private string Object(JsonElement s, string path)
    {
        if (!s.TryGetProperty("properties", out var props)) return "json-object";
        if (props.ValueKind != JsonValueKind.Object) throw Error(path + "/properties", "must be an object");
        if (s.TryGetProperty("additionalProperties", out var extra) && extra.ValueKind != JsonValueKind.False)
            throw Error(path + "/additionalProperties", "only false is supported with properties (the output has exactly the listed properties)");
        var required = new HashSet<string>();
        if (s.TryGetProperty("required", out var req))
        {
            if (req.ValueKind != JsonValueKind.Array) throw Error(path + "/required", "must be an array of names");
            foreach (var entry in req.EnumerateArray())
            {
                string name = entry.GetString() ?? throw Error(path + "/required", "must be an array of names");
                if (!props.TryGetProperty(name, out _)) throw Error(path + "/required", $"'{name}' is not in properties");
                required.Add(name);
            }
        }
        var list = props.EnumerateObject().ToList();
        // kv_i: one "name": value pair. first_i: pairs from i on, none written yet; rest_i: some written (commas).
        var kv = list.Select((p, i) => NewRule($"{Gbnf.Literal(JsonString(p.Name))} ws \":\" ws {Value(p.Value, $"{path}/properties/{p.Name}")}")).ToArray();
        int n = list.Count;
        var rest = new string[n + 1];
        var first = new string[n + 1];
        rest[n] = "\"\"";
        first[n] = "\"\"";
        for (int i = n - 1; i >= 0; i--)
        {
            bool must = required.Contains(list[i].Name);
            rest[i] = NewRule($"ws \",\" ws {kv[i]} {rest[i + 1]}" + (must ? "" : $" | {rest[i + 1]}"));
            first[i] = NewRule($"{kv[i]} {rest[i + 1]}" + (must ? "" : $" | {first[i + 1]}"));
        }
        return $"(\"{{\" ws {first[0]} ws \"}}\")";
    }

    private string Array(JsonElement s, string path)
    {
        string item = s.TryGetProperty("items", out var items) ? Value(items, path + "/items") : "json-value";
        int min = Count(s, "minItems", path) ?? 0;
        int? max = Count(s, "maxItems", path);
        if (max < min) throw Error(path, $"maxItems {max} is below minItems {min}");
        if (max == 0) return "(\"[\" ws \"]\")";
        string more = max is { } m ? $"( ws \",\" ws {item} ){{{Math.Max(min - 1, 0)},{m - 1}}}" : $"( ws \",\" ws {item} ){{{Math.Max(min - 1, 0)},}}";
        string inner = $"{item} {more}";
        return min == 0 ? $"(\"[\" ws ( {inner} )? ws \"]\")" : $"(\"[\" ws {inner} ws \"]\")";
    }

    private int? Count(JsonElement s, string key, string path)
    {
        if (!s.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int n) || n < 0 || n > 10_000)
            throw Error($"{path}/{key}", "must be an integer from 0 to 10000");
        return n;
    }

    private string String(JsonElement s, string path)
    {
        int min = Count(s, "minLength", path) ?? 0;
        int? max = Count(s, "maxLength", path);
        if (max < min) throw Error(path, $"maxLength {max} is below minLength {min}");
        if (s.TryGetProperty("pattern", out var pattern))
        {
            if (s.TryGetProperty("minLength", out _) || s.TryGetProperty("maxLength", out _))
                throw Error(path, "pattern together with minLength/maxLength is not supported");
            string re = pattern.GetString() ?? throw Error(path + "/pattern", "must be a string");
            return $"(\"\\\"\" {RegexGrammar.ToExpression(re, $"{_source}: {path}/pattern", json: true)} \"\\\"\")";
        }
        string reps = max is { } m ? $"{{{min},{m}}}" : min == 0 ? "*" : $"{{{min},}}";
        return $"(\"\\\"\" json-char{reps} \"\\\"\")";
    }

    private string Number(JsonElement s, string path)
    {
        foreach (string k in new[] { "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum" })
            if (s.TryGetProperty(k, out _)) throw Error($"{path}/{k}", $"'{k}' on a number is not supported (it is on an integer)");
        return "json-number";
    }

    private string Integer(JsonElement s, string path)
    {
        long? lo = Bound(s, "minimum", path), hi = Bound(s, "maximum", path);
        if (Bound(s, "exclusiveMinimum", path) is { } xl) lo = Math.Max(lo ?? long.MinValue, xl + 1);
        if (Bound(s, "exclusiveMaximum", path) is { } xh) hi = Math.Min(hi ?? long.MaxValue, xh - 1);
        if (lo is null && hi is null) return "json-int";
        // An open side is bounded at 16 digits, as json-int is.
        const long Limit = 9_999_999_999_999_999;
        long a = Math.Max(lo ?? -Limit, -Limit), b = Math.Min(hi ?? Limit, Limit);
        if (a > b) throw Error(path, $"no integer is in [{lo}, {hi}]");
        var alts = new List<string>();
        if (a < 0) alts.Add($"\"-\" {Range(Math.Max(1, b < 0 ? -b : 1), -a)}");
        if (b >= 0) alts.Add(Range(Math.Max(0, a), b));
        return "(" + string.Join(" | ", alts) + ")";
    }

    private long? Bound(JsonElement s, string key, string path)
    {
        if (!s.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number) throw Error($"{path}/{key}", "must be a number");
        if (v.TryGetInt64(out long n)) return n;
        double d = v.GetDouble();
        if (Math.Abs(d) > 1e16) throw Error($"{path}/{key}", "is out of range");
        return key.StartsWith("exclusiveMin", StringComparison.Ordinal) || key == "maximum" ? (long)Math.Floor(d) : (long)Math.Ceiling(d);
    }

    /// <summary>Decimal strings (no leading zeros) of the integers in [a, b], a and b non-negative.</summary>
    internal static string Range(long a, long b)
    {
        var alts = new List<string>();
        string sa = a.ToString(CultureInfo.InvariantCulture), sb = b.ToString(CultureInfo.InvariantCulture);
        for (int d = sa.Length; d <= sb.Length; d++)
        {
            long lo = Math.Max(a, d == 1 ? 0 : Pow10(d - 1)), hi = Math.Min(b, Pow10(d) - 1);
            if (lo <= hi) alts.Add(SameLength(lo.ToString(CultureInfo.InvariantCulture), hi.ToString(CultureInfo.InvariantCulture)));
        }
        return alts.Count == 1 ? alts[0] : "(" + string.Join(" | ", alts) + ")";
    }

    private static long Pow10(int d) { long p = 1; for (int i = 0; i < d; i++) p *= 10; return p; }

    /// <summary>Strings of lo's length between lo and hi, digit by digit.</summary>
    private static string SameLength(string lo, string hi)
    {
        if (lo.Length == 0) return "\"\"";
        if (lo == hi) return Gbnf.Literal(lo);
        if (lo[0] == hi[0]) return $"\"{lo[0]}\" {SameLength(lo[1..], hi[1..])}";
        int rest = lo.Length - 1;
        string any = rest == 0 ? "" : $" [0-9]{{{rest}}}";
        var alts = new List<string>();
        bool loFull = lo[1..].All(c => c == '0'), hiFull = hi[1..].All(c => c == '9');
        char from = loFull ? lo[0] : (char)(lo[0] + 1), to = hiFull ? hi[0] : (char)(hi[0] - 1);
        if (!loFull) alts.Add($"\"{lo[0]}\" {SameLength(lo[1..], new string('9', rest))}");
        if (from <= to) alts.Add((from == to ? $"\"{from}\"" : $"[{from}-{to}]") + any);
        if (!hiFull) alts.Add($"\"{hi[0]}\" {SameLength(new string('0', rest), hi[1..])}");
        return "(" + string.Join(" | ", alts) + ")";
    }
}
