namespace Tessera.Chat;

/// <summary>The functions a chat request offers the model (OpenAI's <c>tools</c> and <c>tool_choice</c>), on
/// <see cref="Generation.GenerationOptions.Tools"/>: the tools are listed in the prompt and a call is drawn under a
/// grammar of their parameters' schemas, in the Hermes format of <see cref="ToolCallFormat"/>.</summary>
/// <param name="Functions">The functions; their names are unique and their parameter schemas compile.</param>
public sealed record ChatTools(IReadOnlyList<ToolDefinition> Functions)
{
    /// <summary>Whether the model may (<see cref="ToolChoice.Auto"/>, the default), must or must not call one.</summary>
    public ToolChoice Choice { get; init; } = ToolChoice.Auto;
    /// <summary>The one function the model must call (makes the choice <see cref="ToolChoice.Required"/>); null for any.</summary>
    public string? Function { get; init; }
}

/// <summary>A call the model made: the function's name and its arguments as JSON text, which follow the function's
/// parameter schema.</summary>
public sealed record ToolCall(string Name, string Arguments);
