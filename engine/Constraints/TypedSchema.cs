using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization.Metadata;

namespace Tessera.Constraints;

/// <summary>
/// The JSON Schema of a .NET type for a constrained reply: System.Text.Json's exporter gives the serializer's own
/// contract (names, nullability, enums as the converter writes them), made strict as OpenAI's structured outputs are:
/// every property required and no other allowed, so the model writes the whole object and nothing the type lacks.
/// Length, range and description attributes become the schema keywords they mean.
/// </summary>
internal static class TypedSchema
{
    private static readonly JsonSchemaExporterOptions Exporter = new()
    {
        TreatNullObliviousAsNonNullable = true,
        TransformSchemaNode = Transform,
    };

    // Only real calendar dates (a converter refuses 2023-02-29 or 0000-01-01): the days each month has, and 29
    // February in the leap years only (divisible by 4, centuries by 400).
    private const string Year = "([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})";
    private const string LeapYear = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)";
    private const string Date = "(" + Year + "-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
        + "|" + LeapYear + "-02-29)";
    private const string Time = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,7})?";
    private const string Hex = "[0-9a-fA-F]";

    private static readonly Dictionary<string, string> Patterns = new()
    {
        ["date-time"] = $"^{Date}T{Time}(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$",
        ["date"] = $"^{Date}$",
        ["time"] = $"^{Time}$",
        ["uuid"] = $"^{Hex}{{8}}-{Hex}{{4}}-{Hex}{{4}}-{Hex}{{4}}-{Hex}{{12}}$",
    };

    public static string Of(JsonTypeInfo type) => type.Options.GetJsonSchemaAsNode(type.Type, Exporter).ToJsonString();

    private static JsonNode Transform(JsonSchemaExporterContext context, JsonNode node)
    {
        if (node is not JsonObject o) return node;
        if (o["properties"] is JsonObject props)
        {
            o["required"] = new JsonArray([.. props.Select(p => (JsonNode)JsonValue.Create(p.Key))]);
            o["additionalProperties"] = false;
        }
        // The formats .NET's own types carry become the patterns their converters read; any other stays, and the
        // schema compiler refuses it by name rather than letting the model write what the type cannot parse.
        if (o["format"] is JsonValue f && f.TryGetValue(out string? format) && Patterns.TryGetValue(format, out string? pattern))
        {
            o.Remove("format");
            o["pattern"] = pattern;
        }
        if (context.PropertyInfo?.AttributeProvider is ICustomAttributeProvider attrs)
        {
            foreach (var a in attrs.GetCustomAttributes(inherit: true))
                switch (a)
                {
                    case DescriptionAttribute d: o["description"] = d.Description; break;
                    case StringLengthAttribute s:
                        o["maxLength"] = s.MaximumLength;
                        if (s.MinimumLength > 0) o["minLength"] = s.MinimumLength;
                        break;
                    case MaxLengthAttribute m when m.Length > 0: o[IsArray(o) ? "maxItems" : "maxLength"] = m.Length; break;
                    case MinLengthAttribute m when m.Length > 0: o[IsArray(o) ? "minItems" : "minLength"] = m.Length; break;
                    case RangeAttribute r when r.Minimum is IConvertible && r.Maximum is IConvertible:
                        o["minimum"] = Convert.ToDouble(r.Minimum, System.Globalization.CultureInfo.InvariantCulture);
                        o["maximum"] = Convert.ToDouble(r.Maximum, System.Globalization.CultureInfo.InvariantCulture);
                        break;
                }
        }
        return o;
    }

    private static bool IsArray(JsonObject o) =>
        o["type"] is JsonValue v ? v.TryGetValue(out string? t) && t == "array"
        : o["type"] is JsonArray a && a.Any(x => x?.GetValue<string>() == "array");
}
