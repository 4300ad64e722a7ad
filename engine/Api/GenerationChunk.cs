using Tessera.Generation;

namespace Tessera.Api;

/// <summary>One piece of a streamed generation.</summary>
/// <param name="Text">Text that became final with this chunk (may be empty while a multi-byte character is incomplete).</param>
/// <param name="TokenIds">The token(s) this chunk carries (empty for trailing text released at the end).</param>
/// <param name="FinishReason">Set on the last chunk only: why generation ended.</param>
public sealed record GenerationChunk(string Text, IReadOnlyList<int> TokenIds, FinishReason? FinishReason)
{
    /// <summary>Log-probabilities of <see cref="TokenIds"/>, one each, when <see cref="GenerationOptions.LogProbs"/>
    /// asked for them; otherwise empty.</summary>
    public IReadOnlyList<TokenLogProb> LogProbs { get; init; } = [];
    /// <summary>With <see cref="GenerationOptions.PromptLogProbs"/>, on one chunk before the first token (text empty):
    /// the log-probability of each prompt token after the first given the ones before it, with
    /// <see cref="GenerationOptions.LogProbs"/> alternatives (the first prompt token has none: nothing precedes it);
    /// otherwise null.</summary>
    public IReadOnlyList<TokenLogProb>? PromptLogProbs { get; init; }
    /// <summary>Which choice the chunk belongs to (0 to <see cref="GenerationOptions.Choices"/> - 1): with several
    /// choices their chunks interleave, and each choice ends with its own chunk carrying a finish reason.</summary>
    public int Choice { get; init; }
}

/// <summary>The whole result of a non-streaming generation.</summary>
/// <param name="Text">Generated text.</param>
/// <param name="TokenIds">Generated tokens.</param>
/// <param name="PromptTokens">Tokens in the prompt.</param>
/// <param name="FinishReason">Why generation ended.</param>
public sealed record GenerationResult(string Text, IReadOnlyList<int> TokenIds, int PromptTokens, FinishReason FinishReason)
{
    /// <summary>The function the model called, when the request offered <see cref="GenerationOptions.Tools"/> and the
    /// reply is a call (its text is then the call as the model wrote it); else null.</summary>
    public Chat.ToolCall? ToolCall { get; init; }
}
