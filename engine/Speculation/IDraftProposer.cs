namespace Tessera.Speculation;

/// <summary>
/// Guesses the tokens that follow a context, for speculative decoding. The target model then checks every guess in
/// one forward pass; a wrong guess costs time, never correctness (see <see cref="Generation.TextGenerator"/>).
/// One proposer per sequence: it may keep state between calls.
/// </summary>
public interface IDraftProposer
{
    /// <summary>Writes up to <paramref name="draft"/>.Length guessed continuation tokens of
    /// <paramref name="context"/> (the prompt and every token generated so far, the last one included) into
    /// <paramref name="draft"/> and returns how many; 0 when it has no guess.</summary>
    int Propose(ReadOnlySpan<int> context, Span<int> draft);

    /// <summary>Bytes this proposer holds for its sequence (beyond the context it is shown).</summary>
    long StateBytes { get; }
}
