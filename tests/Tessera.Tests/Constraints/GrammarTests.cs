using System.Text;
using NUnit.Framework;
using Tessera.Constraints;

namespace Tessera.Tests.Constraints;

/// <summary>The grammar compiler and matcher on their own: GBNF, regular expressions and JSON Schema, byte by byte.</summary>
public class GrammarTests
{
    private static bool Full(Grammar g, string text)
    {
        var m = new GrammarMatcher(g);
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length > 0 && !m.Allows(bytes)) return false;
        if (bytes.Length > 0) m.Advance(bytes);
        return m.CanEnd;
    }

    private static bool Prefix(Grammar g, string text) => new GrammarMatcher(g).Allows(Encoding.UTF8.GetBytes(text));

    [Test]
    public void GbnfAlternativesRepetitionAndClasses()
    {
        var g = Grammar.ParseGbnf("""
            root ::= greeting ("," ws name)? "!"   # a comment
            greeting ::= "hello" | "hi"
            name ::= [A-Z] [a-z]{1,3}
            ws ::= [ \t]*
            """);
        Assert.That(Full(g, "hello!"), Is.True);
        Assert.That(Full(g, "hi,  Bob!"), Is.True);
        Assert.That(Full(g, "hi,Abcd!"), Is.True);
        Assert.That(Full(g, "hi,Abcde!"), Is.False, "{1,3}");
        Assert.That(Full(g, "hi, B!"), Is.False);
        Assert.That(Full(g, "hey!"), Is.False);
        Assert.That(Prefix(g, "hel"), Is.True);
        Assert.That(Prefix(g, "hex"), Is.False);
        var m = new GrammarMatcher(g);
        m.Advance("hi!"u8);
        Assert.That(m.MustEnd, Is.True, "nothing may follow the '!'");
    }

    [Test]
    public void MultiByteCharactersMatchByteByByte()
    {
        var g = Grammar.ParseGbnf("root ::= [à-ÿ]+ [^a-z] \"€\"\n");
        Assert.That(Full(g, "éü1€"), Is.True);
        Assert.That(Full(g, "éa€"), Is.False);
        Assert.That(Full(g, "é日€"), Is.True, "a negated class takes three-byte characters too");
        var bytes = Encoding.UTF8.GetBytes("é");
        Assert.That(new GrammarMatcher(g).Allows(bytes.AsSpan(0, 1)), Is.True, "a token may end inside a character");
        Assert.That(new GrammarMatcher(g).Allows([0xC3, 0x28]), Is.False, "not the rest of a character of the class");
    }

    [Test]
    public void ARecursiveGrammarNests()
    {
        var g = Grammar.ParseGbnf("root ::= \"(\" root* \")\"\n");
        Assert.That(Full(g, "(()(()))"), Is.True);
        Assert.That(Full(g, "(()"), Is.False);
        Assert.That(Full(g, "())"), Is.False);
    }

    [TestCase("root ::= \"a\" b\n", "rule 'b' is used but never defined")]
    [TestCase("start ::= \"a\"\n", "must define root")]
    [TestCase("root ::= root \"a\" | \"b\"\n", "rule 'root' is left-recursive")]
    [TestCase("root ::= x\nx ::= y? root\ny ::= \"a\"\n", "left-recursive")]
    [TestCase("root ::= \"abc\n", "line 1, rule 'root': unterminated string")]
    [TestCase("root ::= [a-\n", "unterminated character class")]
    [TestCase("root ::= ( \"a\" \n", "missing ')'")]
    [TestCase("root ::= \"a\"{3,1}\n", "the maximum is below the minimum")]
    [TestCase("root ::= \"a\" \\q\n", "unexpected")]
    [TestCase("root ::= \"\\q\"\n", "unknown escape")]
    [TestCase("root ::= [^\\x00-\\U0010FFFF]\n", "can never match anything")]
    [TestCase("root ::= \"a\" root\n", "can never match anything")]
    [TestCase("root ::= \"a\"\nroot ::= \"b\"\n", "defined twice")]
    [TestCase("", "the grammar is empty")]
    public void BadGrammarsAreRefusedWithTheirLineAndRule(string text, string phrase)
    {
        var e = Assert.Throws<FormatException>(() => Grammar.ParseGbnf(text, "test.gbnf"))!;
        Assert.That(e.Message, Does.StartWith("test.gbnf: ").And.Contain(phrase));
    }

    [Test]
    public void RegexesMatchTheWholeString()
    {
        var g = Grammar.FromRegex(@"^(?:[A-Z][a-z]+ )+(and|or) \d{2,3}\.?$");
        Assert.That(Full(g, "Tom and 12."), Is.True);
        Assert.That(Full(g, "Tom Sue or 123"), Is.True);
        Assert.That(Full(g, "Tom and 1234"), Is.False);
        Assert.That(Full(g, "tom and 12"), Is.False);
        Assert.That(Full(Grammar.FromRegex(@"a.c"), "a\nc"), Is.False, ". is not a newline");
        Assert.That(Full(Grammar.FromRegex(@"[\w-]+@[^\s@]+"), "x-y_1@ex.org"), Is.True);
        Assert.That(Full(Grammar.FromRegex(@"[\w-]+@[^\s@]+"), "x y@ex.org"), Is.False);
        Assert.That(Full(Grammar.FromRegex(@"colou?r|\(x\)"), "(x)"), Is.True);
    }

    [TestCase(@"(a)\1", "backreferences are not supported")]
    [TestCase(@"a(?=b)", "lookaround")]
    [TestCase(@"\bword", "word boundaries")]
    [TestCase(@"[^\s\S]", "can never match anything")]
    [TestCase(@"a{2,1}", "bad repetition")]
    [TestCase(@"(ab", "missing ')'")]
    [TestCase(@"ab)", "unbalanced ')'")]
    [TestCase(@"*a", "nothing to repeat")]
    public void BadRegexesAreRefusedByName(string re, string phrase)
    {
        var e = Assert.Throws<FormatException>(() => Grammar.FromRegex(re))!;
        Assert.That(e.Message, Does.StartWith("--regex: ").And.Contain(phrase));
    }

    [Test]
    public void JsonSchemaObjectsFollowTheirProperties()
    {
        var g = Grammar.FromJsonSchema("""
            {"type": "object", "properties": {
               "name": {"type": "string", "maxLength": 5},
               "age": {"type": "integer", "minimum": 7, "maximum": 130},
               "tags": {"type": "array", "items": {"enum": ["a", "b", 3]}, "minItems": 1, "maxItems": 2},
               "pet": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/pet"}]}},
             "required": ["name", "age"], "additionalProperties": false,
             "$defs": {"pet": {"type": "object", "properties": {"kind": {"const": "cat"}}, "required": ["kind"]}}}
            """);
        Assert.That(Full(g, """{"name":"Tom","age":7}"""), Is.True);
        Assert.That(Full(g, """{ "name": "Tom\"s", "age": 130, "tags": ["a", 3], "pet": {"kind":"cat"} }"""), Is.True);
        Assert.That(Full(g, """{"name":"Tom","age":7,"pet":null}"""), Is.True, "optional properties may be left out");
        Assert.That(Full(g, """{"age":7,"name":"Tom"}"""), Is.False, "the schema's order");
        Assert.That(Full(g, """{"name":"Tom"}"""), Is.False, "age is required");
        Assert.That(Full(g, """{"name":"Tommy!","age":7}"""), Is.False, "maxLength 5");
        foreach (int age in new[] { 6, 131, 200, 1000, -1, 70 })
            Assert.That(Full(g, $$"""{"name":"T","age":{{age}}}"""), Is.EqualTo(age is >= 7 and <= 130), $"age {age}");
        Assert.That(Full(g, """{"name":"T","age":07}"""), Is.False, "no leading zeros");
        Assert.That(Full(g, """{"name":"T","age":8,"tags":[]}"""), Is.False, "minItems 1");
        Assert.That(Full(g, """{"name":"T","age":8,"tags":["a","b","a"]}"""), Is.False, "maxItems 2");
        Assert.That(Full(g, """{"name":"T","age":8,"pet":{"kind":"dog"}}"""), Is.False);
        Assert.That(Full(g, """{"name":"T","age":8,"extra":1}"""), Is.False, "additionalProperties false");
    }

    [Test]
    public void IntegerRangesAreExact()
    {
        foreach (var (lo, hi) in new[] { (0L, 0L), (3L, 3L), (0L, 9L), (5L, 123L), (-50L, -7L), (-15L, 42L), (100L, 999L), (99L, 1001L) })
        {
            var g = Grammar.FromJsonSchema($$"""{"type":"integer","minimum":{{lo}},"maximum":{{hi}}}""");
            for (long v = lo - 120; v <= hi + 120; v++)
                Assert.That(Full(g, v.ToString(System.Globalization.CultureInfo.InvariantCulture)), Is.EqualTo(v >= lo && v <= hi), $"{v} in [{lo}, {hi}]");
        }
        var ex = Grammar.FromJsonSchema("""{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10}""");
        Assert.That(Full(ex, "0") || Full(ex, "10"), Is.False);
        Assert.That(Full(ex, "1") && Full(ex, "9"), Is.True);
    }

    [Test]
    public void PatternsInsideStringsStayValidJson()
    {
        var g = Grammar.FromJsonSchema("""{"type":"string","pattern":"^[a-z\"]{1,3}-\\d$"}""");
        Assert.That(Full(g, "\"ab-1\""), Is.True);
        Assert.That(Full(g, "\"a\\\"-1\""), Is.True, "a quote the pattern allows is written escaped");
        Assert.That(Full(g, "\"a\"-1\""), Is.False, "never raw");
        Assert.That(Full(g, "\"abcd-1\""), Is.False);
    }

    [TestCase("""{"type":"string","format":"email"}""", "#: 'format' is not supported")]
    [TestCase("""{"type":"object","properties":{"a":{"type":"number","minimum":1}}}""", "#/properties/a/minimum: 'minimum' on a number is not supported")]
    [TestCase("""{"type":"objekt"}""", "unknown type 'objekt'")]
    [TestCase("""{"allOf":[{"type":"string"},{"maxLength":3}]}""", "'allOf' of more than one schema is not supported")]
    [TestCase("""{"type":"object","properties":{"a":{}},"additionalProperties":true}""", "only false is supported")]
    [TestCase("""{"type":"object","properties":{"a":{}},"required":["b"]}""", "'b' is not in properties")]
    [TestCase("""{"$ref":"#/$defs/missing"}""", "does not resolve")]
    [TestCase("""{"type":"integer","minimum":5,"maximum":4}""", "no integer is in [5, 4]")]
    [TestCase("""{"type":"string","pattern":"(a"}""", "missing ')'")]
    [TestCase("""{"type": "string",""", "not valid JSON")]
    [TestCase("""false""", "accepts no value")]
    public void UnsupportedOrInvalidSchemasAreRefusedByName(string schema, string phrase)
    {
        var e = Assert.Throws<FormatException>(() => Grammar.FromJsonSchema(schema, "schema.json"))!;
        Assert.That(e.Message, Does.StartWith("schema.json: ").And.Contain(phrase));
    }

    [Test]
    public void AnyJsonObjectAcceptsNestedObjectsOnly()
    {
        var g = Grammar.AnyJsonObject;
        Assert.That(Full(g, """{"a": [1, -2.5e3, "x\u00e9", {"b": null}], "c": true}"""), Is.True);
        Assert.That(Full(g, "{}"), Is.True);
        Assert.That(Full(g, "[1]"), Is.False);
        Assert.That(Full(g, """{"a": 01}"""), Is.False);
        Assert.That(Full(g, """{"a": "tab	inside"}"""), Is.False, "control characters are escaped in JSON strings");
    }
}
