namespace Tessera.Speculation;

/// <summary>
/// Guesses the tokens that follow a context, for speculative decoding: a chain or a tree of them. The target model
/// then checks every guess in one forward pass; a wrong guess costs time, never correctness (see
/// <see cref="Generation.TextGenerator"/>). One proposer per sequence: it may keep state between calls.
/// </summary>
public interface IDraftProposer
{
    /// <summary>Called once with the prompt while the target runs it, before any draft: a draft model runs the prompt
    /// here (its time counts in the prompt's, as the target's prefill does), so that drafting later only catches up
    /// on the tokens generated since. The default does nothing.</summary>
    void Begin(ReadOnlySpan<int> prompt) { }

    /// <summary>Grows <paramref name="tree"/>, whose root is the last token of <paramref name="context"/> (the
    /// prompt and every token generated so far), with guessed continuations, up to its limit; adding nothing means
    /// no guess.</summary>
    void Propose(ReadOnlySpan<int> context, DraftTree tree);

    /// <summary>Shown the target's logits (<paramref name="vocab"/> per row, in row order) at every row of the tree
    /// just verified, accepted or not; a tree of one row is a plain decoding step. Proposers that learn from the
    /// target (Token Recycling) use it; the default ignores it.</summary>
    void Observe(DraftTree tree, ReadOnlySpan<float> logits, int vocab) { }

    /// <summary>Bytes this proposer holds for its sequence (beyond the context it is shown).</summary>
    long StateBytes { get; }
}
