namespace Tessera.Constraints;

/// <summary>
/// A context-free grammar over bytes, compiled from llama.cpp's GBNF (<see cref="Gbnf"/>), which a regular
/// expression (<see cref="RegexGrammar"/>) and a JSON Schema (<see cref="JsonSchemaGrammar"/>) are translated to.
/// Every rule is a list of alternatives; an alternative is a sequence of elements, each a set of bytes or a reference
/// to a rule; repetitions and character classes were rewritten into rules of that form when parsing (a code-point
/// class became alternatives of UTF-8 byte sequences), so that a token spanning several grammar elements, or ending
/// inside a multi-byte character, is matched byte by byte. Immutable; one grammar serves any number of
/// <see cref="GrammarMatcher"/>s.
/// </summary>
public sealed class Grammar
{
    internal const byte End = 0, Bytes = 1, Rule = 2;

    // Element i: kind, and its byte set (index into _sets) or rule. Each alternative's elements end with an End.
    internal readonly byte[] Kind;
    internal readonly int[] Arg;
    internal readonly ulong[] Sets;          // 4 words (256 bits) per byte set
    internal readonly int[][] Alternatives;  // rule -> the element index where each alternative starts
    internal readonly string[] RuleNames;

    internal Grammar(byte[] kind, int[] arg, ulong[] sets, int[][] alternatives, string[] names, int root, string source)
    {
        Kind = kind; Arg = arg; Sets = sets; Alternatives = alternatives; RuleNames = names; Root = root; Source = source;
    }

    /// <summary>The start rule.</summary>
    public int Root { get; }
    /// <summary>What the grammar was made from, for messages (a file name, "--regex", "response_format").</summary>
    public string Source { get; }
    /// <summary>Rules, including those made for repetitions and classes.</summary>
    public int RuleCount => Alternatives.Length;

    internal bool Matches(int element, byte b) => (Sets[Arg[element] * 4 + (b >> 6)] & (1UL << (b & 63))) != 0;

    /// <summary>Parses llama.cpp's GBNF (<c>root ::= ...</c>).</summary>
    /// <exception cref="FormatException">The grammar does not parse, has no root, refers to an undefined rule, is
    /// left-recursive or can match nothing; the message names <paramref name="source"/>, the line and the rule.</exception>
    public static Grammar ParseGbnf(string text, string source = "grammar") => Gbnf.Parse(text, source);

    /// <summary>A grammar for strings matching the regular expression as a whole (as if between ^ and $).</summary>
    public static Grammar FromRegex(string pattern, string source = "--regex") => Gbnf.Parse(RegexGrammar.ToGbnf(pattern, source), source);

    /// <summary>A grammar for the JSON values a JSON Schema accepts (the subset <see cref="JsonSchemaGrammar"/> names).</summary>
    public static Grammar FromJsonSchema(string schema, string source = "json schema") => Gbnf.Parse(JsonSchemaGrammar.ToGbnf(schema, source), source);

    /// <summary>Any JSON object (OpenAI's <c>response_format: {"type": "json_object"}</c>).</summary>
    public static Grammar AnyJsonObject { get; } = Gbnf.Parse(JsonSchemaGrammar.AnyObjectGbnf, "json object");
}
