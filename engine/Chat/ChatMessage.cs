namespace Tessera.Chat;

/// <summary>One turn of a conversation.</summary>
/// <param name="Role"><c>system</c>, <c>user</c> or <c>assistant</c>.</param>
/// <param name="Content">The text.</param>
public sealed record ChatMessage(string Role, string Content)
{
    /// <summary>The assistant's turn that made <paramref name="call"/> (to put an earlier call back into a conversation).</summary>
    public static ChatMessage FromToolCall(ToolCall call) => new("assistant", ToolCallFormat.RenderCall(call.Name, call.Arguments));

    /// <summary>The turn that brings a tool's result back to the model (a user turn in the Hermes format; OpenAI's
    /// <c>role: "tool"</c> message).</summary>
    public static ChatMessage FromToolResult(string content) => new("user", ToolCallFormat.RenderResult(content));
}
