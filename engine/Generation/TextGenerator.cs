using System.Diagnostics;
using System.Runtime.InteropServices;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Speculation;
using Tessera.Tokenization;

namespace Tessera.Generation;

/// <summary>Timing and counts of one generation.</summary>
public sealed class GenerationStats
{
    /// <summary>Tokens in the prompt.</summary>
    public int PromptTokens { get; internal set; }
    /// <summary>Tokens generated.</summary>
    public int GeneratedTokens { get; internal set; }
    /// <summary>Time to run the prompt (prefill).</summary>
    public TimeSpan PromptTime { get; internal set; }
    /// <summary>Time spent generating after the prompt.</summary>
    public TimeSpan GenerationTime { get; internal set; }
    /// <summary>Why it stopped.</summary>
    public FinishReason FinishReason { get; internal set; }
    /// <summary>Drafted and accepted counts when <see cref="GenerationOptions.Speculation"/> was set; else null.</summary>
    public SpeculationStats? Speculation { get; internal set; }
    /// <summary>What Cautious NTP did, when <see cref="GenerationOptions.Cautious"/> was set.</summary>
    public CautiousStats? Cautious { get; internal set; }
    /// <summary>The most positions the sequence's KV cache held at once during this generation (bounded by
    /// <see cref="GenerationOptions.KvBudget"/> when set).</summary>
    public int KvPeakPositions { get; internal set; }
    /// <summary>Positions the KV budget dropped during this generation.</summary>
    public long KvDroppedPositions { get; internal set; }
    /// <summary>Prompt tokens per second.</summary>
    public double PromptTokensPerSecond => PromptTokens / Math.Max(PromptTime.TotalSeconds, 1e-9);
    /// <summary>Generated tokens per second (the first token's forward pass counts in the prompt time).</summary>
    public double GenerationTokensPerSecond => GeneratedTokens / Math.Max(GenerationTime.TotalSeconds, 1e-9);
}

/// <summary>
/// Runs a prompt and generates from it, one sequence: prefill in one batched pass, then one token per step, or,
/// with <see cref="GenerationOptions.Speculation"/>, a verification pass over the last token and a proposer's draft.
/// </summary>
/// <remarks>
/// Why speculation here is lossless, for greedy decoding and for sampling alike: a verification pass over a draft
/// tree rooted at the last token t gives, in the row of node d, the same logits (bit for bit: every op works row by
/// row, and a tree row attends to exactly its path, with masked positions contributing exact zeros) that plain
/// decoding gives after t and the tokens on d's path. The tokens are then drawn exactly as plain decoding draws them,
/// row after row with the same sampler (penalties, temperature, top-k/p, min-p and one uniform number per token, in
/// order), starting at the root; the walk moves to a child only when the token just drawn equals that child's token,
/// i.e. when the child's input is the token plain decoding would have fed. So the output, and a seed's draws, are
/// identical to decoding without speculation. For deterministic proposers (lookup, recycling) this is the rejection
/// rule of multi-draft speculative sampling with q a point mass, in distribution: child c is accepted with
/// probability p(c), and when every child is rejected the token comes from p with the tried children removed and
/// renormalized — drawing x ~ p once and taking the child equal to x (if any) is that same rule, realized with one
/// uniform number. After the walk stops, the accepted path's keys and values move to consecutive positions
/// (<see cref="RunState.Accept"/>); every other row of the tree is dropped and later overwritten before anything
/// reads it.
/// </remarks>
public sealed class TextGenerator(LlamaModel model, Tokenizer tokenizer)
{

    /// <summary>
    /// Prefills <paramref name="prompt"/> into <paramref name="state"/> (which may already hold earlier turns) and
    /// yields generated tokens with the text each completes. <paramref name="stats"/> is filled as it goes.
    /// On the CUDA backend the token is drawn on the device when the options allow it (no penalties or
    /// log-probabilities; <c>TESSERA_DEVICE_SAMPLING=0</c> turns it off), and <c>state.Logits</c> is then not updated.
    /// </summary>
    public IEnumerable<GeneratedToken> Generate(RunState state, IReadOnlyList<int> prompt, GenerationOptions options,
        GenerationStats? stats = null, CancellationToken cancellation = default)
    {
        options.Validate();
        if (options.PromptLogProbs || options.Choices > 1)
            throw new ArgumentException($"{(options.PromptLogProbs ? "prompt log-probabilities" : $"n {options.Choices}")}: served by InferenceEngine's scheduler; TextGenerator runs one continuation", nameof(options));
        if (options.Suffix is not null)
            throw new ArgumentException("suffix: TextGenerator takes the prompt's tokens; encode it with Tokenizer.EncodeInfill (InferenceEngine does that for a suffix)", nameof(options));
        stats ??= new GenerationStats();
        int promptTokens = prompt.Count;
        if (options.Cautious is not null)
        {
            foreach (var step in GenerateCautious(state, prompt, options, stats, cancellation)) yield return step;
            yield break;
        }
        (prompt, options, string healed) = TokenHealing.Apply(tokenizer, prompt, options);
        var skip = new HealedPrefix(healed);
        if (prompt.Count == 0) throw new ArgumentException("the prompt is empty: give at least one token (or let the tokenizer add BOS)", nameof(prompt));
        state.UseKvBudget(options.KvBudget);
        long droppedBefore = state.KvPolicy?.Dropped ?? 0;
        if (state.KvPolicy is { } kvBudget) { kvBudget.Horizon = options.MaxTokens; kvBudget.PromptEnd = state.Position + prompt.Count; }
        if (state.KvPolicy is null && state.Cached + prompt.Count > state.ContextSize)   // a budget compresses as the prompt runs
            throw new ArgumentException(
                $"the prompt is {prompt.Count} tokens, but only {state.ContextSize - state.Cached} of the context of {state.ContextSize} are free", nameof(prompt));
        foreach (int t in prompt)
            if ((uint)t >= (uint)model.Config.VocabSize)
                throw new ArgumentException($"prompt token {t} is outside the vocabulary (0..{model.Config.VocabSize - 1})", nameof(prompt));

        var sampler = new Sampler(options.Sampling, model.Config.VocabSize,
            options.Constraint is { } grammar ? new Constraints.TokenConstraint(grammar, tokenizer) : null);
        foreach (int t in prompt) sampler.Accept(t);
        var decoder = new Utf8StreamDecoder(tokenizer, options.RenderSpecial);
        var stops = StopStringFilter.For(options, tokenizer);

        // On CUDA the device samples whenever it can draw exactly as the host would: only token ids cross.
        var cuda = model.Backend as Backends.Cuda.CudaBackend;
        var spec = options.Speculation;
        bool onDevice = cuda is not null && DeviceSampling.Enabled && spec is null && options.Constraint is null
            && DeviceSampling.Unsupported(options.Sampling, model.Config.VocabSize, options.LogProbs is not null) is null;
        state.LogitsStayOnDevice = onDevice;
        try
        {
            var sw = Stopwatch.StartNew();
            // The proposer is set up with the prompt (a draft model's cache is allocated here), so its cost counts
            // in the prompt's time, not in the tokens'.
            int vocab = model.Config.VocabSize;
            var proposer = (spec is { Method: SpeculationMethod.Self } ? spec with { Target = model } : spec)?.CreateProposer(vocab, state.ContextSize, options.Sampling.Temperature);
            using var ownedProposer = proposer as IDisposable;  // a draft model's cache, for this sequence
            state.UsePrefillPruning(options.PrefillPruning);
            model.Forward(state, prompt.ToArray());
            if (proposer is not null)
            {
                var promptSpan = prompt is List<int> list ? CollectionsMarshal.AsSpan(list) : prompt.ToArray();
                proposer.Begin(promptSpan);
            }
            stats.PromptTokens = promptTokens;  // the prompt as given (healing took one token back to regenerate it)
            stats.PromptTime = sw.Elapsed;
            sw.Restart();

            int[] one = new int[1];
            // On CUDA the decode step is captured once as a graph and replayed per token, as bench and golden run it;
            // not when the layout changes inside a step (a pruned prompt hides other rows in each layer) or between
            // steps in ways a replay cannot follow (a budget's compaction and scores).
            using var graph = cuda is not null && Backends.Cuda.CudaDecodeGraph.Enabled && spec is null && state.KvPolicy is null
                && state.Pruning is not { HasHoles: true }
                ? new Backends.Cuda.CudaDecodeGraph(model, state) : null;
            // Log-probabilities come from the raw logits; the sampler's penalties change them in place, so keep a copy.
            float[]? raw = options.LogProbs is null ? null : new float[state.Logits.Length];
            // Speculation: a pass over a draft tree rooted at the last token leaves one logits row per tree row in
            // `rows`; `node` is the row the next token is drawn from, `path` the rows accepted so far (root first) and
            // `pending` the rows the pass produced (0: none, the next token comes from state.Logits). Every buffer is
            // sized once here, not per token.
            List<int>? context = null;
            if (spec is not null)
            {
                context = new List<int>(prompt.Count + options.MaxTokens);  // sized once: no growth per token
                context.AddRange(prompt);
            }
            int limit = spec is null ? 0 : Math.Min(spec.DraftLimit, state.MaxBatch - 1);
            var tree = spec is null ? null : new DraftTree(limit + 1);
            float[] rows = spec is null ? [] : new float[(limit + 1) * vocab];
            int[] path = spec is null ? [] : new int[limit + 1];
            int pending = 0, node = 0, accepted = 0, asked = 0;
            var budget = spec is { Adaptive: true } && limit > 0 ? DraftBudgets.For(model, spec, limit) : null;  // limit 0: one row a step, never a draft
            // A pass is timed from its start to the next one's: its drafting, its forward, and the drawing, decoding and
            // yielding of every token it gave (the consumer's time too, the same per token either way), so the budget
            // weighs what a token really costs in each mode. Recorded when the next pass starts; -1: nothing pending.
            long passStart = 0;
            int recordSize = -1, recordAccepted = 0;
            if (spec is not null)
                stats.Speculation = new SpeculationStats
                {
                    Method = spec.ProposerFactory is null ? spec.Method.ToString().ToLowerInvariant() : "custom",
                    ProposerBytes = proposer!.StateBytes,
                };
            stats.FinishReason = FinishReason.MaxTokens;
            bool stoppedByText = false;  // a stop string or end marker: what the filter held is not released
            try
            {
                for (int i = 0; i < options.MaxTokens; i++)
                {
                    cancellation.ThrowIfCancellationRequested();
                    Span<float> logits = pending > 0 ? rows.AsSpan(node * vocab, vocab) : state.Logits;
                    if (raw != null) logits.CopyTo(raw);
                    int token = onDevice ? DeviceSampling.Sample(cuda!, state, sampler, options.Sampling) : sampler.Sample(logits);
                    var logProb = raw is null ? null : TokenLogProb.Compute(raw, token, options.LogProbs!.Value);
                    sampler.Accept(token);
                    stats.GeneratedTokens++;
                    if (stats.Speculation is { } counts && i > 0)
                    {
                        counts.GeneratedAfterFirst++;
                        if (pending == 0 || node == 0) counts.VerifySteps++;  // the first token drawn from a pass
                    }
                    if (options.StopAtEndOfGeneration && tokenizer.IsEndOfGeneration(token))
                    {
                        stats.FinishReason = FinishReason.EndOfGeneration;
                        break;
                    }
                    var (text, stopped) = stops.Add(skip.Take(decoder.Add(token)));
                    if (stopped)
                    {
                        yield return new GeneratedToken(token, text) { LogProb = logProb };
                        stats.FinishReason = stops.EndedGeneration ? FinishReason.EndOfGeneration : FinishReason.StopString;
                        stoppedByText = true;
                        break;
                    }
                    yield return new GeneratedToken(token, text) { LogProb = logProb };
                    if (sampler.Constraint is { IsComplete: true })
                    {
                        stats.FinishReason = FinishReason.EndOfGeneration;  // the grammar is complete: nothing may follow
                        break;
                    }
                    // Positions whose keys and values are valid: in a verification pass, the accepted path's.
                    int cached = state.Cached + (pending > 0 ? accepted + 1 : 0);
                    if (cached >= state.ContextSize)
                    {
                        stats.FinishReason = FinishReason.ContextFull;
                        break;
                    }
                    context?.Add(token);
                    if (pending > 0)
                    {
                        int child = tree!.Child(node, token);
                        if (child >= 0)
                        {
                            // The draft held this very token below the current row: its logits are ready.
                            node = child;
                            path[++accepted] = child;
                            stats.Speculation!.AcceptedTokens++;
                            stats.GenerationTime = sw.Elapsed;
                            continue;
                        }
                        // Rejected, or the tree is used up: keep the accepted path's keys and values, drop the rest.
                        recordSize = asked;
                        recordAccepted = accepted;
                        state.Accept(path.AsSpan(0, accepted + 1));
                        pending = 0;
                    }
                    int room = 0;
                    if (proposer is not null)
                    {
                        // A tree of n rows needs n cache positions and yields at most its depth + 1 tokens: never
                        // draft past the context, nor deeper than the tokens still to generate.
                        room = Math.Min(state.ContextSize - state.Position - 1, limit);
                        int depth = options.MaxTokens - (i + 1) - 1;
                        if (depth <= 0) room = 0;
                        if (budget is not null)
                        {
                            long now = Stopwatch.GetTimestamp();
                            if (recordSize >= 0) budget.Record(recordSize, now - passStart, recordAccepted);
                            recordSize = -1;
                            passStart = now;
                            room = budget.DraftLength(room);
                        }
                        tree!.Reset(token, room + 1, depth);
                        if (room > 0) proposer.Propose(CollectionsMarshal.AsSpan(context), tree);
                    }
                    if (tree is { Count: > 1 })
                    {
                        model.ForwardTree(state, tree.Tokens.AsSpan(0, tree.Count), tree.Parents.AsSpan(0, tree.Count), rows.AsSpan(0, tree.Count * vocab));
                        proposer!.Observe(tree, rows.AsSpan(0, tree.Count * vocab), vocab);
                        pending = tree.Count;
                        asked = room;
                        node = accepted = 0;
                        path[0] = 0;
                        stats.Speculation!.DraftedTokens += tree.Count - 1;
                    }
                    else
                    {
                        if (graph is null) { one[0] = token; model.Forward(state, one); }
                        else graph.Step(token);
                        recordSize = room;  // 0: a plain step; else a draft asked for that found nothing (1 token for its cost)
                        if (proposer is not null)
                        {
                            tree!.Reset(token, 1);
                            proposer.Observe(tree, state.Logits, vocab);  // a plain step teaches a learning proposer too
                        }
                    }
                    stats.GenerationTime = sw.Elapsed;
                }
            }
            finally
            {
                // Leave the state as plain decoding would: only the positions actually accepted stay cached.
                if (pending > 0) state.Accept(path.AsSpan(0, accepted + 1));
                if (stats.Speculation is { } sp) sp.ProposerBytes = proposer!.StateBytes;  // what it grew to (a draft's cache)
            }
            stats.GenerationTime = sw.Elapsed;
            stats.KvPeakPositions = state.KvPolicy?.PeakCount ?? state.Cached;
            stats.KvDroppedPositions = (state.KvPolicy?.Dropped ?? 0) - droppedBefore;
            if (!stoppedByText)
            {
                string tail = stops.Add(skip.Take(decoder.Flush())).Release + stops.Flush();
                if (tail.Length > 0) yield return new GeneratedToken(-1, tail);
            }
        }
        finally
        {
            state.LogitsStayOnDevice = false;
        }
    }

    /// <summary>
    /// Decoding with Cautious NTP (see <see cref="CautiousOptions"/>): one token at a time where the model is sure, the
    /// best of several trials (run together as one tree per round) where it is not. Each kept token goes through the
    /// same end-of-generation, stop-string, token-limit and context checks as plain decoding.
    /// </summary>
    private IEnumerable<GeneratedToken> GenerateCautious(RunState state, IReadOnlyList<int> prompt, GenerationOptions options,
        GenerationStats stats, CancellationToken cancellation)
    {
        foreach (int t in prompt)
            if ((uint)t >= (uint)model.Config.VocabSize)
                throw new ArgumentException($"prompt token {t} is outside the vocabulary (0..{model.Config.VocabSize - 1})", nameof(prompt));
        if (state.Position + prompt.Count >= state.ContextSize)
            throw new ArgumentException($"the prompt is {prompt.Count} tokens, but only {state.ContextSize - state.Position} of the context of {state.ContextSize} are free", nameof(prompt));
        int vocab = model.Config.VocabSize;
        var sampler = new Sampler(options.Sampling, vocab);
        var decoder = new Utf8StreamDecoder(tokenizer, options.RenderSpecial);
        var stops = StopStringFilter.For(options, tokenizer);
        var trials = new CautiousTrials(model, tokenizer, options.Cautious!);
        var cautious = stats.Cautious = new CautiousStats();
        var sw = Stopwatch.StartNew();
        model.Forward(state, prompt.ToArray());
        stats.PromptTokens = prompt.Count;
        stats.PromptTime = sw.Elapsed;
        sw.Restart();
        var raw = new float[vocab];
        var row = new float[vocab];
        int[] one = new int[1];
        int last = prompt[^1];
        stats.FinishReason = FinishReason.MaxTokens;
        bool stoppedByText = false, done = false;
        while (!done && stats.GeneratedTokens < options.MaxTokens)
        {
            cancellation.ThrowIfCancellationRequested();
            state.Logits.CopyTo(raw);
            raw.CopyTo(row, 0);
            int first = sampler.SampleMeasured(row, out double p, out double entropy);
            int n = options.Cautious!.TrialsFor(entropy);
            int count = 1;
            var kept = one;
            one[0] = first;
            if (n > 1 && state.Position < state.ContextSize)
            {
                count = trials.Run(state, sampler, raw, first, p, n, options.MaxTokens - stats.GeneratedTokens, cautious);
                kept = trials.Kept;
            }
            for (int k = 0; k < count; k++)
            {
                int token = kept[k];
                stats.GeneratedTokens++;
                if (options.StopAtEndOfGeneration && tokenizer.IsEndOfGeneration(token)) { stats.FinishReason = FinishReason.EndOfGeneration; done = true; break; }
                var (text, stopped) = stops.Add(decoder.Add(token));
                yield return new GeneratedToken(token, text);
                if (stopped)
                {
                    stats.FinishReason = stops.EndedGeneration ? FinishReason.EndOfGeneration : FinishReason.StopString;
                    stoppedByText = done = true;
                    break;
                }
                if (stats.GeneratedTokens >= options.MaxTokens) { done = true; break; }
            }
            if (done) break;
            last = kept[count - 1];
            if (state.Position >= state.ContextSize) { stats.FinishReason = FinishReason.ContextFull; break; }
            one[0] = last;
            model.Forward(state, one);
        }
        stats.GenerationTime = sw.Elapsed;
        if (!stoppedByText)
        {
            string tail = stops.Add(decoder.Flush()).Release + stops.Flush();
            if (tail.Length > 0) yield return new GeneratedToken(-1, tail);
        }
    }
}
