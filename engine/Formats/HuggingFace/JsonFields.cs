using System.Globalization;
using System.Text.Json;

namespace Tessera.Formats.HuggingFace;

/// <summary>
/// Typed reads of the fields of one JSON object, each failure a <see cref="ModelFormatException"/> naming the file
/// and the field. Optional fields treat JSON null as absent, as transformers does.
/// </summary>
internal readonly struct JsonFields(JsonElement obj, string path, string prefix = "")
{
    public JsonElement Object => obj;

    public bool Has(string name) => obj.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null;

    public int RequiredInt(string name) => OptionalInt(name) ?? throw Missing(name);

    public int? OptionalInt(string name)
    {
        if (!TryGet(name, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Number)
        {
            if (e.TryGetInt32(out int i)) return i;
            // 1e4 or 128.0 are integers written by a float-minded tool; anything else is not.
            double d = e.GetDouble();
            if (d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue) return (int)d;
        }
        throw WrongType(name, e, "an integer");
    }

    public int RequiredPositiveInt(string name)
    {
        int v = RequiredInt(name);
        return v > 0 ? v : throw Invalid(name, $"is {v}, but must be positive");
    }

    public double RequiredDouble(string name) => OptionalDouble(name) ?? throw Missing(name);

    public double? OptionalDouble(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw WrongType(name, e, "a number");
    }

    public bool? OptionalBool(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(name, e, "a boolean"),
        };
    }

    public string RequiredString(string name) => OptionalString(name) ?? throw Missing(name);

    public string? OptionalString(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind == JsonValueKind.String ? e.GetString()! : throw WrongType(name, e, "a string");
    }

    public string[] StringList(string name)
    {
        if (!TryGet(name, out var e)) return [];
        if (e.ValueKind != JsonValueKind.Array) throw WrongType(name, e, "a list of strings");
        var list = new List<string>();
        foreach (var x in e.EnumerateArray())
            list.Add(x.ValueKind == JsonValueKind.String ? x.GetString()! : throw WrongType(name, e, "a list of strings"));
        return [.. list];
    }

    /// <summary>Token ids are written as one integer or a list of them (several EOS tokens in Llama 3).</summary>
    public int[] IntOrIntList(string name)
    {
        if (!TryGet(name, out var e)) return [];
        if (e.ValueKind == JsonValueKind.Number) return [OptionalInt(name)!.Value];
        if (e.ValueKind != JsonValueKind.Array) throw WrongType(name, e, "an integer or a list of integers");
        var list = new List<int>();
        foreach (var x in e.EnumerateArray())
            list.Add(x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out int i) ? i : throw WrongType(name, e, "an integer or a list of integers"));
        return [.. list];
    }

    /// <summary>A nested object, or null when absent or JSON null.</summary>
    public JsonFields? OptionalObject(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind == JsonValueKind.Object
            ? new JsonFields(e, path, prefix + name + ".")
            : throw WrongType(name, e, "an object");
    }

    public ModelFormatException Invalid(string name, string problem) => new(path, $"field '{prefix}{name}' {problem}");

    private bool TryGet(string name, out JsonElement e) =>
        obj.TryGetProperty(name, out e) && e.ValueKind != JsonValueKind.Null;

    private ModelFormatException Missing(string name) =>
        obj.TryGetProperty(name, out _) ? Invalid(name, "is null") : Invalid(name, "is missing");

    private ModelFormatException WrongType(string name, JsonElement e, string expected)
    {
        string raw = e.GetRawText();
        if (raw.Length > 40) raw = raw[..37] + "...";
        return Invalid(name, $"should be {expected} but is {e.ValueKind.ToString().ToLower(CultureInfo.InvariantCulture)} {raw}");
    }
}
