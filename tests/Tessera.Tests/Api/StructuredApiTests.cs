using System.ComponentModel.DataAnnotations;
using DescriptionAttribute = System.ComponentModel.DescriptionAttribute;
using RangeAttribute = System.ComponentModel.DataAnnotations.RangeAttribute;
using System.Text.Json;
using System.Text.Json.Serialization;
using NUnit.Framework;
using Tessera.Api;
using Tessera.Chat;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Server;

namespace Tessera.Tests.Api;

[JsonConverter(typeof(JsonStringEnumConverter<Pet>))]
public enum Pet { Cat, Dog, Bird }

public sealed record Address([property: StringLength(10)] string City, [property: Range(1, 999)] int Number);

public sealed record Person(
    [property: StringLength(12), Description("the person's first name")] string Name,
    [property: Range(0, 120)] int Age,
    bool Likes,
    [property: MaxLength(3)] Pet[] Pets,
    DateOnly Born,
    Guid Id,
    Address? Home);

public sealed record Link(Uri Target);

[JsonSerializable(typeof(Person))]
[JsonSerializable(typeof(Link))]
public sealed partial class StructuredJson : JsonSerializerContext;

/// <summary>
/// The library's structured output: <see cref="InferenceEngine.CompleteJsonAsync{T}(IReadOnlyList{ChatMessage}, System.Text.Json.Serialization.Metadata.JsonTypeInfo{T}, GenerationOptions?, CancellationToken)"/>
/// returns a deserialized object of a C# type (schema from the type), and <see cref="GenerationOptions.Tools"/> makes
/// a chat call functions. The model is random-weight (Llama 2 vocabulary): only the constraint makes its output an
/// object of the type, so every seeded sample deserializing and keeping the attributes' bounds shows the schema and
/// the grammar hold.
/// </summary>
public class StructuredApiTests
{
    private InferenceEngine _engine = null!;

    [OneTimeSetUp]
    public async Task Load() => _engine = await InferenceEngine.LoadAsync(SpmModel.Path, new EngineOptions { ContextSize = 1024, MaxSequences = 4 });

    [OneTimeTearDown]
    public void Unload() => _engine.Dispose();

    private static GenerationOptions Sampled(ulong seed, int max = 300) => new()
    {
        MaxTokens = max, Sampling = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = seed },
    };

    private static readonly ChatMessage[] Ask = [new("user", "Describe a person.")];

    [Test]
    public void TheSchemaIsStrictAndCarriesTheAttributes()
    {
        using var doc = JsonDocument.Parse(InferenceEngine.SchemaOf(StructuredJson.Default.Person));
        var root = doc.RootElement;
        Assert.That(root.GetProperty("additionalProperties").GetBoolean(), Is.False);
        Assert.That(root.GetProperty("required").EnumerateArray().Select(e => e.GetString()),
            Is.EquivalentTo(new[] { "Name", "Age", "Likes", "Pets", "Born", "Id", "Home" }));
        var p = root.GetProperty("properties");
        Assert.That(p.GetProperty("Name").GetProperty("maxLength").GetInt32(), Is.EqualTo(12));
        Assert.That(p.GetProperty("Name").GetProperty("description").GetString(), Is.EqualTo("the person's first name"));
        Assert.That(p.GetProperty("Age").GetProperty("maximum").GetDouble(), Is.EqualTo(120));
        Assert.That(p.GetProperty("Pets").GetProperty("maxItems").GetInt32(), Is.EqualTo(3));
        Assert.That(p.GetProperty("Born").TryGetProperty("format", out _), Is.False, "a date is a pattern, not an unchecked format");
        Assert.That(p.GetProperty("Home").GetProperty("required").GetArrayLength(), Is.EqualTo(2), "nested objects are strict too");
    }

    [Test]
    public async Task EverySampleIsAnObjectOfTheTypeWithinItsBounds()
    {
        int homes = 0;
        for (ulong seed = 1; seed <= 8; seed++)
        {
            var p = await _engine.CompleteJsonAsync(Ask, StructuredJson.Default.Person, Sampled(seed));
            Assert.That(p.Name.Length, Is.LessThanOrEqualTo(12), $"seed {seed}");
            Assert.That(p.Age, Is.InRange(0, 120), $"seed {seed}");
            Assert.That(p.Pets, Has.Length.LessThanOrEqualTo(3).And.All.Matches<Pet>(Enum.IsDefined), $"seed {seed}");
            if (p.Home is { } h)
            {
                homes++;
                Assert.That(h.City.Length, Is.LessThanOrEqualTo(10));
                Assert.That(h.Number, Is.InRange(1, 999));
            }
        }
        Console.WriteLine($"{homes} of 8 samples had a home (the rest null)");
    }

    [Test]
    public async Task TheReflectionOverloadAndAPromptWorkToo()
    {
        var p = await _engine.CompleteJsonAsync<Person>(Ask, Sampled(21));
        Assert.That(p.Age, Is.InRange(0, 120));
        var q = await _engine.CompleteJsonAsync("A person:", StructuredJson.Default.Person, Sampled(22));
        Assert.That(q.Name.Length, Is.LessThanOrEqualTo(12));
    }

    [Test]
    public void AReplyCutShortOrATypeItCannotConstrainIsNamed()
    {
        var cut = Assert.ThrowsAsync<InvalidOperationException>(async () => await _engine.CompleteJsonAsync(Ask, StructuredJson.Default.Person, Sampled(1, max: 4)))!;
        Assert.That(cut.Message, Does.Contain("Person").And.Contain("token limit").And.Contain("MaxTokens"));
        var uri = Assert.ThrowsAsync<ArgumentException>(async () => await _engine.CompleteJsonAsync(Ask, StructuredJson.Default.Link, Sampled(1)))!;
        Assert.That(uri.Message, Does.Contain("Link").And.Contain("'format'"));
        var two = Assert.ThrowsAsync<ArgumentException>(async () => await _engine.CompleteJsonAsync(Ask, StructuredJson.Default.Person,
            Sampled(1) with { Constraint = Tessera.Constraints.Gbnf.Parse(Tessera.Constraints.RegexGrammar.ToGbnf("a+", "re"), "re") }))!;
        Assert.That(two.Message, Does.Contain("the type is the constraint"));
    }

    private static readonly ToolDefinition Weather = new("get_weather", "The weather in a city",
        """{"type": "object", "properties": {"city": {"type": "string", "maxLength": 16}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"], "additionalProperties": false}""");
    private static readonly ToolDefinition Time = new("get_time", null,
        """{"type": "object", "properties": {"zone": {"type": "string", "maxLength": 8}}, "required": ["zone"], "additionalProperties": false}""");

    [Test]
    public async Task ARequiredCallComesBackParsedAndFollowsItsSchema()
    {
        var ask = new[] { new ChatMessage("user", "What is the weather in Paris?") };
        for (ulong seed = 1; seed <= 4; seed++)
        {
            var r = await _engine.CompleteAsync(ask, Sampled(seed, 200) with { Tools = new ChatTools([Weather, Time]) { Choice = ToolChoice.Required } });
            Assert.That(r.ToolCall, Is.Not.Null, r.Text);
            Assert.That(r.PromptTokens, Is.EqualTo(_engine.CountTokens(ToolCallFormat.WithTools(ask, [Weather, Time]))), "the prompt counted with its tools listed");
            using var args = JsonDocument.Parse(r.ToolCall!.Arguments);
            if (r.ToolCall.Name == "get_weather")
            {
                Assert.That(args.RootElement.GetProperty("city").GetString()!.Length, Is.LessThanOrEqualTo(16));
                Assert.That(args.RootElement.GetProperty("unit").GetString(), Is.AnyOf("c", "f"));
            }
            else Assert.That(r.ToolCall.Name, Is.EqualTo("get_time"));
        }
        var forced = await _engine.CompleteAsync(ask, Sampled(5, 200) with { Tools = new ChatTools([Weather, Time]) { Function = "get_time" } });
        Assert.That(forced.ToolCall!.Name, Is.EqualTo("get_time"));
        var none = await _engine.CompleteAsync(ask, Sampled(6, 12) with { Tools = new ChatTools([Weather]) { Choice = ToolChoice.None } });
        Assert.That(none.ToolCall, Is.Null);
        // The call goes back into the conversation as the server renders it.
        var next = ask.Append(ChatMessage.FromToolCall(forced.ToolCall)).Append(ChatMessage.FromToolResult("""{"time": "12:00"}""")).ToArray();
        Assert.That(next[1].Content, Does.StartWith(ToolCallFormat.Open + "{\"name\": \"get_time\", \"arguments\": ").And.EndWith(ToolCallFormat.Close));
        Assert.That(next[2].Content, Is.EqualTo("<tool_response>\n{\"time\": \"12:00\"}\n</tool_response>"));
        Assert.That((await _engine.CompleteAsync(next, Sampled(7, 8))).TokenIds, Is.Not.Empty);
    }

    [Test]
    public void BadToolsAreRefusedByName()
    {
        var ask = new[] { new ChatMessage("user", "hi") };
        var bad = new ToolDefinition("no spaces", null, """{"type": "object"}""");
        Assert.That(Assert.ThrowsAsync<ArgumentException>(async () => await _engine.CompleteAsync(ask, new GenerationOptions { Tools = new ChatTools([bad]) }))!.Message,
            Does.Contain("tools[0].function.name 'no spaces'"));
        var schema = new ToolDefinition("f", null, """{"type": "object", "properties": {"x": {"type": "strin"}}}""");
        Assert.That(Assert.ThrowsAsync<ArgumentException>(async () => await _engine.CompleteAsync(ask, new GenerationOptions { Tools = new ChatTools([schema]) }))!.Message,
            Does.Contain("unknown type 'strin'"));
        Assert.That(Assert.ThrowsAsync<ArgumentException>(async () => await _engine.CompleteAsync(ask, new GenerationOptions { Tools = new ChatTools([Weather]) { Function = "nope" } }))!.Message,
            Does.Contain("no tool is named 'nope'"));
        Assert.That(Assert.Throws<ArgumentException>(() => _engine.GenerateAsync("hi", new GenerationOptions { Tools = new ChatTools([Weather]) }))!.Message,
            Does.Contain("only a chat"));
    }
}

/// <summary>The date pattern a <see cref="DateOnly"/> property is constrained by accepts exactly the dates its converter
/// reads: every day of four years around a leap day and a century, and none of the impossible ones.</summary>
public class TypedDatePatternTests
{
    [Test]
    public void TheDatePatternIsTheCalendar()
    {
        using var doc = JsonDocument.Parse(InferenceEngine.SchemaOf(StructuredJson.Default.Person));
        string pattern = doc.RootElement.GetProperty("properties").GetProperty("Born").GetProperty("pattern").GetString()!;
        var re = new System.Text.RegularExpressions.Regex(pattern);
        foreach (int year in new[] { 1, 1900, 2000, 2023, 2024, 2100, 2400, 9999 })
            for (int m = 1; m <= 12; m++)
                for (int d = 1; d <= 31; d++)
                {
                    string text = $"{year:0000}-{m:00}-{d:00}";
                    bool real = d <= DateTime.DaysInMonth(year, m);
                    Assert.That(re.IsMatch(text), Is.EqualTo(real), text);
                }
        Assert.That(re.IsMatch("0000-01-01"), Is.False);
    }
}
