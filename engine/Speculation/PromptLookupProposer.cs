namespace Tessera.Speculation;

/// <summary>
/// Prompt lookup (llama.cpp's <c>lookup</c>, vLLM's n-gram proposer): find the most recent earlier occurrence of the
/// context's last n tokens, n from <see cref="MaxNgram"/> down to <see cref="MinNgram"/> (4 to 2 by default: a single-token match guesses wrong
/// too often on a CPU, where every drafted row costs), and propose the tokens that
/// followed it. Pays off where the output repeats the input or itself (summaries, code edits, quoted names, and the
/// formulaic stories of TinyStories). Stateless: it holds no memory of its own.
/// </summary>
public sealed class PromptLookupProposer : IDraftProposer
{
    /// <summary>A proposer matching n-grams of <paramref name="minNgram"/> .. <paramref name="maxNgram"/> tokens.</summary>
    public PromptLookupProposer(int minNgram = 2, int maxNgram = 4)
    {
        if (minNgram < 1 || maxNgram < minNgram)
            throw new ArgumentOutOfRangeException(nameof(minNgram), $"n-gram sizes {minNgram}..{maxNgram}: need 1 <= min <= max");
        MinNgram = minNgram;
        MaxNgram = maxNgram;
    }

    /// <summary>Shortest suffix matched.</summary>
    public int MinNgram { get; }
    /// <summary>Longest suffix matched (tried first: a longer match predicts better).</summary>
    public int MaxNgram { get; }

    /// <inheritdoc/>
    public long StateBytes => 0;

    /// <inheritdoc/>
    public void Propose(ReadOnlySpan<int> context, DraftTree tree)
    {
        Span<int> draft = stackalloc int[Backends.RaggedBatch.MaxTreeRows];
        int n = Propose(context, draft[..Math.Max(0, tree.Limit - tree.Count)]);
        tree.AddChain(draft[..n]);
    }

    /// <summary>Writes up to <paramref name="draft"/>.Length tokens that followed the latest earlier occurrence of the
    /// context's last n tokens into <paramref name="draft"/>; returns how many (0: no match).</summary>
    public int Propose(ReadOnlySpan<int> context, Span<int> draft)
    {
        int len = context.Length;
        for (int n = Math.Min(MaxNgram, len - 1); n >= MinNgram; n--)
        {
            var suffix = context.Slice(len - n, n);
            // Latest occurrence first: recent text predicts the next tokens best. The match must end before the
            // suffix itself so at least one token follows it.
            for (int start = len - n - 1; start >= 0; start--)
            {
                if (!context.Slice(start, n).SequenceEqual(suffix)) continue;
                int from = start + n;
                int count = Math.Min(draft.Length, len - from);
                context.Slice(from, count).CopyTo(draft);
                return count;
            }
        }
        return 0;
    }
}
