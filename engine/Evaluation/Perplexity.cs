using Tessera.Model;

namespace Tessera.Evaluation;

/// <summary>Result of a perplexity run.</summary>
/// <param name="Value">exp(mean negative log-likelihood).</param>
/// <param name="Chunks">Chunks evaluated.</param>
/// <param name="ScoredTokens">Tokens whose likelihood was counted.</param>
/// <param name="ChunkValues">Running perplexity after each chunk, as llama.cpp prints them.</param>
public sealed record PerplexityResult(double Value, int Chunks, int ScoredTokens, IReadOnlyList<double> ChunkValues);

/// <summary>
/// llama.cpp's perplexity protocol: the text is tokenized once (with BOS when the model adds it), cut into chunks of
/// <c>context</c> tokens, each chunk run from an empty cache with its first token replaced by BOS, and only the
/// second half of each chunk is scored (so every scored token has at least context/2 tokens before it).
/// </summary>
public static class Perplexity
{
    /// <summary>Computes the perplexity of <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">The text is shorter than two chunks, or the context is out of range.</exception>
    /// <remarks>With <paramref name="kvBudget"/> each chunk's unscored first half runs as one prompt (then compressed
    /// to the budget by its policy) and every scored token runs alone after it, teacher-forced, so each scored token
    /// attends to at most the budget's positions: the quality a budget costs, on the same tokens.</remarks>
    /// <remarks>With <paramref name="scoreLast"/> N > 0, each chunk's first context − N tokens run as one prompt
    /// (pruned with <paramref name="pruning"/> when given) and the last N are scored by teacher-forced decoding, one
    /// token per step: the likelihood of the true continuation after the prompt (the prompt's last logits score the
    /// first of them).</remarks>
    public static PerplexityResult Compute(LoadedModel m, string text, int context, Action<int, double>? progress = null,
        Kv.KvBudgetOptions? kvBudget = null, Pruning.PrefillPruningOptions? pruning = null, int scoreLast = 0)
    {
        if (scoreLast < 0 || scoreLast >= context) throw new ArgumentException($"--score-last {scoreLast}: must be 1 to {context - 1} (within a chunk of --context {context})", nameof(scoreLast));
        if (pruning is not null && scoreLast == 0) throw new ArgumentException("--prefill-pruning: perplexity scores a pruned prompt by its continuation; give --score-last N", nameof(pruning));
        if (pruning is not null && kvBudget is not null) throw new ArgumentException("--prefill-pruning: not together with --kv-budget", nameof(pruning));
        if (context < 4) throw new ArgumentException($"--context {context}: must be at least 4", nameof(context));
        if (context > m.Config.ContextLength)
            throw new ArgumentException($"--context {context}: the model supports at most {m.Config.ContextLength}", nameof(context));
        var tok = m.Tokenizer;
        bool addBos = tok.AddBosByDefault && tok.BosId.HasValue;
        var tokens = tok.Encode(text, addBos);
        if (tokens.Count < 2 * context)
            throw new ArgumentException(
                $"the text is {tokens.Count} tokens; perplexity with a context of {context} needs at least {2 * context} (use a longer text or a smaller --context)");
        int chunks = tokens.Count / context;
        int first = scoreLast > 0 ? context - scoreLast - 1 : context / 2;   // logits row `first` predicts the first scored token
        int vocab = m.Config.VocabSize;
        var logits = new float[context * vocab];
        var chunk = new int[context];
        var values = new List<double>(chunks);
        double nll = 0;
        int count = 0;
        using var state = m.Model.CreateState(context, maxBatch: scoreLast > 0 ? context : Math.Min(context, 512));
        for (int c = 0; c < chunks; c++)
        {
            for (int i = 0; i < context; i++) chunk[i] = tokens[c * context + i];
            if (addBos) chunk[0] = tok.BosId!.Value;
            state.Rewind(0);
            if (scoreLast > 0) RunContinuation(m.Model, state, chunk, first + 1, kvBudget, pruning, logits);
            else if (kvBudget is null) m.Model.Forward(state, chunk, logits);
            else RunContinuation(m.Model, state, chunk, first, kvBudget, null, logits);   // rows first.. one per step
            for (int j = first; j < context - 1; j++)
            {
                nll -= LogSoftmaxAt(logits.AsSpan(j * vocab, vocab), tokens[c * context + j + 1]);
                count++;
            }
            values.Add(Math.Exp(nll / count));
            progress?.Invoke(c + 1, values[^1]);
        }
        return new PerplexityResult(Math.Exp(nll / count), chunks, count, values);
    }

    // The chunk's first `prompt` tokens as one prompt step (pruned or under a budget when asked), then one token per
    // step; logits row j (j ≥ prompt − 1) predicts token j + 1, where a whole-chunk pass puts it.
    private static void RunContinuation(LlamaModel model, RunState state, int[] chunk, int prompt, Kv.KvBudgetOptions? budget,
        Pruning.PrefillPruningOptions? pruning, float[] logits)
    {
        state.UseKvBudget(budget);   // after Rewind(0): a fresh budget
        if (state.KvPolicy is { } b) { b.Horizon = chunk.Length - prompt; b.PromptEnd = prompt; }
        state.UsePrefillPruning(pruning);
        int vocab = model.Config.VocabSize;
        model.Forward(state, chunk.AsSpan(0, prompt));
        state.Logits.CopyTo(logits.AsSpan((prompt - 1) * vocab, vocab));
        for (int j = prompt; j < chunk.Length - 1; j++)   // the last token predicts nothing that is scored
            model.Forward(state, chunk.AsSpan(j, 1), logits.AsSpan(j * vocab, vocab));
    }

    /// <summary>log softmax(<paramref name="logits"/>)[<paramref name="target"/>], in double.</summary>
    internal static double LogSoftmaxAt(ReadOnlySpan<float> logits, int target)
    {
        float max = float.NegativeInfinity;
        foreach (float l in logits) max = Math.Max(max, l);
        double sum = 0;
        foreach (float l in logits) sum += Math.Exp(l - max);
        return logits[target] - max - Math.Log(sum);
    }
}
