using System.Text;
using System.Text.Json;
using Tessera.Constraints;

namespace Tessera.Chat;

/// <summary>A function the model may call: its name, what it does, and a JSON Schema of its arguments.</summary>
/// <param name="Name">1 to 64 letters, digits, '_' or '-'.</param>
/// <param name="Description">What the function does (shown to the model), or null.</param>
/// <param name="ParametersSchema">The arguments' JSON Schema (an object schema), as JSON text.</param>
public sealed record ToolDefinition(string Name, string? Description, string ParametersSchema);

/// <summary>Whether the model may, must or must not call a tool (OpenAI's <c>tool_choice</c>).</summary>
public enum ToolChoice
{
    /// <summary>The model answers or calls one tool, as it likes.</summary>
    Auto,
    /// <summary>The model answers in text.</summary>
    None,
    /// <summary>The model calls one of the tools (or the one named).</summary>
    Required,
}

/// <summary>
/// How tools reach the model and how its calls come back, in the Hermes format that Qwen and many fine-tunes use, for
/// every chat template (Tessera does not run Jinja templates; this is the documented generic form): a system message
/// lists the tools as JSON inside <c>&lt;tools&gt;</c>, a call is <c>&lt;tool_call&gt;{"name": ..., "arguments":
/// {...}}&lt;/tool_call&gt;</c>, and a tool's result goes back as <c>&lt;tool_response&gt;</c> in a user turn. The call
/// is produced under a grammar (<see cref="Grammar"/>), so its arguments always follow the function's schema.
/// </summary>
public static class ToolCallFormat
{
    /// <summary>Opens and closes a call in the model's output.</summary>
    public const string Open = "<tool_call>", Close = "</tool_call>";

    /// <summary>Checks a tool list: names, duplicates, and every parameter schema compiles.</summary>
    /// <exception cref="FormatException">The first problem, naming <c>tools[i]...</c>.</exception>
    public static void Validate(IReadOnlyList<ToolDefinition> tools)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < tools.Count; i++)
        {
            string name = tools[i].Name;
            if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                throw new FormatException($"tools[{i}].function.name '{name}': must be 1 to 64 letters, digits, '_' or '-'");
            if (!seen.Add(name)) throw new FormatException($"tools[{i}].function.name '{name}': defined twice");
        }
        _ = Grammar(tools, ToolChoice.Required, null);
    }

    /// <summary>The grammar for a reply under <paramref name="choice"/>: one call (to <paramref name="forced"/> when
    /// given) when required, a call or text not starting with '&lt;' when auto; null for none.</summary>
    public static Grammar? Grammar(IReadOnlyList<ToolDefinition> tools, ToolChoice choice, string? forced)
    {
        if (choice == ToolChoice.None || tools.Count == 0) return null;
        var chosen = forced is null ? tools : tools.Where(t => t.Name == forced).ToList();
        if (chosen.Count == 0) throw new FormatException($"tool_choice: no tool is named '{forced}'");
        string gbnf = JsonSchemaGrammar.ToolCallGbnf([.. chosen.Select(t => (t.Name, t.ParametersSchema))], allowText: choice == ToolChoice.Auto && forced is null, "tools");
        return Gbnf.Parse(gbnf, "tools");
    }

    /// <summary>The system text that lists the tools and says how to call one.</summary>
    public static string SystemPrompt(IReadOnlyList<ToolDefinition> tools)
    {
        var sb = new StringBuilder("You may call one of these functions. To call one, reply with only ");
        sb.Append(Open).Append("{\"name\": <function name>, \"arguments\": <arguments as JSON>}").Append(Close).Append(".\n<tools>\n");
        foreach (var t in tools)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteString("type", "function");
                w.WriteStartObject("function");
                w.WriteString("name", t.Name);
                if (t.Description is not null) w.WriteString("description", t.Description);
                w.WritePropertyName("parameters");
                using (var doc = JsonDocument.Parse(t.ParametersSchema)) doc.RootElement.WriteTo(w);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            sb.Append(Encoding.UTF8.GetString(ms.ToArray())).Append('\n');
        }
        return sb.Append("</tools>").ToString();
    }

    /// <summary><paramref name="messages"/> with the tools' system text first (merged into a leading system message).</summary>
    public static IReadOnlyList<ChatMessage> WithTools(IReadOnlyList<ChatMessage> messages, IReadOnlyList<ToolDefinition> tools)
    {
        if (tools.Count == 0) return messages;
        string text = SystemPrompt(tools);
        if (messages.Count > 0 && messages[0].Role == "system")
            return [new ChatMessage("system", messages[0].Content + "\n\n" + text), .. messages.Skip(1)];
        return [new ChatMessage("system", text), .. messages];
    }

    /// <summary>An earlier call, as the assistant's turn shows it.</summary>
    public static string RenderCall(string name, string arguments) => $"{Open}{{\"name\": {JsonSerializerString(name)}, \"arguments\": {arguments}}}{Close}";

    /// <summary>A tool's result, as the user turn that brings it back shows it.</summary>
    public static string RenderResult(string content) => $"<tool_response>\n{content}\n</tool_response>";

    /// <summary>Reads a call from a reply: the function's name and its arguments' JSON text as the model wrote it.</summary>
    public static bool TryParse(string reply, out string name, out string arguments)
    {
        name = arguments = "";
        string t = reply.Trim();
        if (!t.StartsWith(Open, StringComparison.Ordinal) || !t.EndsWith(Close, StringComparison.Ordinal)) return false;
        try
        {
            using var doc = JsonDocument.Parse(t[Open.Length..^Close.Length]);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("arguments", out var a)) return false;
            name = n.GetString()!;
            arguments = a.GetRawText();  // as generated: a stream of its fragments adds up to the same text
            return true;
        }
        catch (JsonException) { return false; }
    }

    /// <summary>What a call to <paramref name="name"/> starts with, up to its arguments (for streaming them).</summary>
    public static string CallPrefix(string name) => Open + JsonSchemaGrammar.ToolCallPrefix(name);

    private static string JsonSerializerString(string s)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms)) w.WriteStringValue(s);
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
