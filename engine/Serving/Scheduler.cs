using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Tessera.Api;
using Tessera.Backends;
using Tessera.Generation;
using Tessera.Interop.Kernels;
using Tessera.Kv;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Tokenization;

namespace Tessera.Serving;

/// <summary>Limits of the continuous-batching scheduler.</summary>
/// <param name="MaxSequences">Sequences running (admitted, holding KV blocks) at once; the rest wait.</param>
/// <param name="MaxTokensPerStep">Tokens (decode and prefill, all sequences) in one forward step.</param>
/// <param name="ContextSize">Most tokens one sequence may hold.</param>
/// <param name="KvBlocks">Blocks in the paged KV cache.</param>
/// <param name="BlockSize">Positions per block.</param>
internal sealed record SchedulerLimits(int MaxSequences, int MaxTokensPerStep, int ContextSize, int KvBlocks, int BlockSize);

/// <summary>
/// Continuous batching on one loop (one thread). Each step has a token budget: every running sequence that is
/// decoding contributes its one token first (decode-first keeps the time between tokens low), then prompts are
/// prefilled in chunks that fill the rest (chunked prefill: a long prompt never stalls running streams); all of it
/// runs as one ragged forward pass. KV blocks come from a <see cref="BlockManager"/>: a new prompt starts from the
/// cached full blocks of its prefix. When blocks run out the newest running sequence is preempted: its blocks are
/// released (its full ones stay cached) and it waits at the head of the queue to be recomputed, which gives the same
/// numbers, so its output does not change. Every sequence samples with its own sampler, so a seeded request gives
/// the same tokens alone or under load.
/// </summary>
internal sealed class Scheduler : IDisposable
{
    private readonly LlamaModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly BatchState _state;
    private readonly BlockManager _blocks;
    private readonly RaggedBatch _batch;
    private readonly ConcurrentQueue<Sequence> _incoming = new();
    private readonly LinkedList<Sequence> _waiting = new();
    private readonly List<Sequence> _running = [];           // admission order: the last is the newest
    private readonly List<(Sequence Seq, int Tokens)> _plan = [];
    private readonly Backends.Cuda.CudaBackend? _deviceSampler;   // set when due tokens are drawn on the device
    private readonly int[] _deviceTokens = [], _sampledIds = [];  // by plan position / by request (device sampling only)
    private readonly SampleRequest[] _requests = [];
    private readonly AutoResetEvent _wake = new(false);
    private readonly Thread _thread;
    private volatile bool _stopping, _paused;
    private long _nextId;
    private int _queued, _runningCount, _blocksInUse;
    private long _preemptions, _prefixHitTokens, _steps, _draftedTokens, _acceptedTokens, _promptComputed, _forks;
    private long _stepTicks;
    private long _kvDropped;
    private int[] _kvFrom = [], _kvTo = [];                                          // time of the last forward step
    private readonly int[] _copyFrom = new int[RaggedBatch.MaxTreeRows], _copyTo = new int[RaggedBatch.MaxTreeRows];
    private float[]? _forkLogits;                                     // a leader's row, copied for each follower's draw
    private readonly CautiousStats _cautious = new();                 // Cautious NTP, all sequences together

    public Scheduler(LlamaModel model, Tokenizer tokenizer, SchedulerLimits limits)
    {
        if (limits.MaxSequences < 1) throw new ArgumentException($"MaxSequences {limits.MaxSequences}: must be 1 or more", nameof(limits));
        if (limits.MaxTokensPerStep < limits.MaxSequences)
            throw new ArgumentException($"MaxTokensPerStep {limits.MaxTokensPerStep}: must be at least MaxSequences ({limits.MaxSequences}), so every running sequence can decode each step", nameof(limits));
        if ((long)limits.KvBlocks * limits.BlockSize < limits.ContextSize)
            throw new ArgumentException($"KvBlocks {limits.KvBlocks}: {limits.KvBlocks} x {limits.BlockSize} positions cannot hold one full context of {limits.ContextSize}", nameof(limits));
        _model = model;
        _tokenizer = tokenizer;
        Limits = limits;
        _blocks = new BlockManager(limits.KvBlocks, limits.BlockSize);
        int tablePerSeq = (limits.ContextSize + limits.BlockSize - 1) / limits.BlockSize;
        _batch = new RaggedBatch(limits.MaxTokensPerStep, limits.MaxSequences, limits.MaxSequences * tablePerSeq, limits.BlockSize);
        _state = model.CreateBatchState(limits.MaxTokensPerStep, limits.MaxSequences, limits.KvBlocks, limits.BlockSize, limits.ContextSize);
        _deviceSampler = DeviceSampling.Enabled ? model.Backend as Backends.Cuda.CudaBackend : null;
        if (_deviceSampler is not null)
        {
            _deviceTokens = new int[limits.MaxSequences];
            _sampledIds = new int[limits.MaxSequences];
            _requests = new SampleRequest[limits.MaxSequences];
        }
        _thread = new Thread(Loop) { IsBackground = true, Name = "tessera-scheduler" };
        _thread.Start();
    }

    public SchedulerLimits Limits { get; }
    /// <summary>Requests accepted and not running (new, or preempted and waiting to be recomputed).</summary>
    public int QueueLength => Volatile.Read(ref _queued);
    /// <summary>Sequences admitted and holding KV blocks.</summary>
    public int RunningSequences => Volatile.Read(ref _runningCount);
    /// <summary>KV blocks referenced by running sequences (cached unreferenced blocks do not count).</summary>
    public int KvBlocksInUse => Volatile.Read(ref _blocksInUse);
    /// <summary>Times a sequence was preempted for lack of KV blocks.</summary>
    public long Preemptions => Interlocked.Read(ref _preemptions);
    /// <summary>Prompt tokens taken from cached prefix blocks instead of computed.</summary>
    public long PrefixHitTokens => Interlocked.Read(ref _prefixHitTokens);
    /// <summary>Draft tokens verified, all sequences together.</summary>
    public long DraftedTokens => Interlocked.Read(ref _draftedTokens);
    /// <summary>Draft tokens accepted, all sequences together.</summary>
    public long AcceptedTokens => Interlocked.Read(ref _acceptedTokens);
    /// <summary>Prompt positions run through the model (a prompt recomputed after a preemption counts again; the
    /// choices forked from a first one do not).</summary>
    public long PromptTokensComputed => Interlocked.Read(ref _promptComputed);
    /// <summary>Choices started from another's cached prompt (<see cref="GenerationOptions.Choices"/> &gt; 1).</summary>
    public long Forks => Interlocked.Read(ref _forks);
    /// <summary>Positions KV budgets dropped, all sequences together.</summary>
    public long KvDroppedPositions => Interlocked.Read(ref _kvDropped);
    /// <summary>Preemptions of a sequence amid Cautious NTP trials, and of one whose prompt was being scored (tests).</summary>
    internal int PreemptedAmidTrials { get; private set; }
    internal int PreemptedWhileScoring { get; private set; }
    /// <summary>Cautious NTP's work, all sequences together (written by the loop only).</summary>
    public CautiousStats Cautious => _cautious;
    /// <summary>Forward steps run.</summary>
    public long Steps => Interlocked.Read(ref _steps);

    /// <summary>Test hook: while paused the loop runs no step but still frees cancelled sequences, so a test can
    /// hold a request mid-stream without racing its end.</summary>
    internal bool Paused
    {
        get => _paused;
        set { _paused = value; _wake.Set(); }
    }

    /// <summary>Queues a request; its chunks arrive on the returned sequence's <see cref="Sequence.Output"/>.</summary>
    public Sequence Submit(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellation)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (prompt.Count == 0) throw new ArgumentException("the prompt is empty: give at least one token (or let the tokenizer add BOS)", nameof(prompt));
        if (prompt.Count >= Limits.ContextSize)
            throw new ArgumentException($"the prompt is {prompt.Count} tokens, which does not fit the context of {Limits.ContextSize}", nameof(prompt));
        int vocab = _model.Config.VocabSize;
        foreach (int t in prompt)
            if ((uint)t >= (uint)vocab) throw new ArgumentException($"prompt token {t} is outside the vocabulary (0..{vocab - 1})", nameof(prompt));
        options.KvBudget?.CheckBackend(_model.Backend);
        options.PrefillPruning?.CheckBackend(_model.Backend);
        options.KvBudget?.CheckModel(_model.Config);
        options.PrefillPruning?.CheckModel(_model.Config);
        if (options.PrefillPruning is not null && prompt.Count > Limits.MaxTokensPerStep)
            throw new ArgumentException($"prefill_pruning: a pruned prompt runs as one step; its {prompt.Count} tokens exceed the {Limits.MaxTokensPerStep} of a step", nameof(options));
        if (options.Choices > Limits.MaxSequences)
            throw new ArgumentException($"n {options.Choices}: more choices than the engine runs at once ({Limits.MaxSequences} sequences)", nameof(options));
        (prompt, options, string healed) = TokenHealing.Apply(_tokenizer, prompt, options);
        var stream = new ChoiceStream(options.Choices);
        var seq = NewSequence(prompt, options, stream, 0, healed);
        if (options.MaxTokens == 0 && !options.PromptLogProbs)
        {
            for (int c = 0; c < options.Choices; c++)
            {
                var s = c == 0 ? seq : NewSequence(prompt, options, stream, c, healed);
                s.Emit(new GenerationChunk("", [], FinishReason.MaxTokens));
                s.Complete();
            }
            return seq;
        }
        if (options.Choices > 1)
        {
            seq.Followers = new List<Sequence>(options.Choices - 1);
            for (int c = 1; c < options.Choices; c++)
            {
                var f = NewSequence(prompt, options, stream, c, healed);
                f.Watch(cancellation, () => _wake.Set());
                seq.Followers.Add(f);
            }
            seq.OtherChoices = [.. seq.Followers];
        }
        seq.Watch(cancellation, () => _wake.Set());
        Interlocked.Increment(ref _queued);
        _incoming.Enqueue(seq);
        _wake.Set();
        return seq;
    }

    /// <summary>Choice <paramref name="choice"/> of a request: its own sampler (seed + choice, so each choice has its
    /// own stream of draws and choice 0 draws what a one-choice request draws), decoder and stop filter.</summary>
    private Sequence NewSequence(IReadOnlyList<int> prompt, GenerationOptions options, ChoiceStream stream, int choice, string healed = "")
    {
        int vocab = _model.Config.VocabSize;
        var sampling = choice > 0 && options.Sampling.Seed is { } seed ? options.Sampling with { Seed = seed + (ulong)choice } : options.Sampling;
        var sampler = new Sampler(sampling, vocab, options.Constraint is { } grammar ? new Constraints.TokenConstraint(grammar, _tokenizer) : null);
        foreach (int t in prompt) sampler.Accept(t);
        return new Sequence(Interlocked.Increment(ref _nextId), prompt, options, sampler,
            new Utf8StreamDecoder(_tokenizer, options.RenderSpecial), StopStringFilter.For(options, _tokenizer), stream, choice)
        {
            RawLogits = options.LogProbs is null ? null : new float[vocab],
            Pruning = options.PrefillPruning is { } pruning
                ? new Pruning.PrefillPruning(pruning, _model.Config.Layers, Limits.MaxTokensPerStep, (Limits.ContextSize + Limits.BlockSize - 1) / Limits.BlockSize, Limits.BlockSize) { Armed = prompt.Count > 1 }
                : null,
            Kv = options.KvBudget is { } budget ? new Kv.KvBudget(budget, Limits.ContextSize + Limits.MaxTokensPerStep) { Horizon = options.MaxTokens, PromptEnd = prompt.Count } : null,
            // Only the first choice computes (and reports) the prompt; the others fork it.
            PromptLogProbs = options.PromptLogProbs && choice == 0 ? new List<TokenLogProb>(prompt.Count) : null,
            Healed = new HealedPrefix(healed),
            // A speculating sequence's rows are walked (or observed) on the host, as TextGenerator does.
            DrawsOnDevice = _deviceSampler is not null && options.Speculation is null && options.Constraint is null && options.Cautious is null
                && !options.PromptLogProbs
                && DeviceSampling.Unsupported(options.Sampling, vocab, options.LogProbs is not null) is null,
        };
    }

    /// <summary>Wakes the loop (a consumer abandoned its sequence).</summary>
    public void Wake() => _wake.Set();

    private void Loop()
    {
        while (!_stopping)
        {
            while (_incoming.TryDequeue(out var s)) _waiting.AddLast(s);
            ReapCancelled();
            Publish();
            if (_paused || (_running.Count == 0 && _waiting.Count == 0))
            {
                _wake.WaitOne();
                continue;
            }
            try
            {
                Schedule();
                if (_plan.Count == 0)
                {
                    // Nothing could run: only possible when no sequence is running and the head of the queue cannot
                    // get blocks, which the limits rule out (a full context always fits). Wait rather than spin.
                    _wake.WaitOne(10);
                    continue;
                }
                // This loop's thread did not create the backend (a CUDA context is current per thread); cheap enough to
                // repeat every step, and a failure fails the step's requests with the reason.
                _model.Backend.UseOnCurrentThread();
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                _model.Forward(_state, _batch, readLogits: _deviceSampler is null);
                Interlocked.Increment(ref _steps);
                Advance(t0);
            }
            catch (Exception e)
            {
                // A failed step fails the requests in it, never the loop: the others keep being served. A failure
                // before anything was planned fails everyone rather than repeating forever.
                var failed = _plan.Count > 0 ? _plan.Select(p => p.Seq).ToArray() : [.. _running, .. _waiting];
                foreach (var seq in failed) Finish(seq, e);
                Publish();
            }
        }
        while (_incoming.TryDequeue(out var s)) _waiting.AddLast(s);
        var gone = new ObjectDisposedException(nameof(InferenceEngine), "the engine was disposed");
        foreach (var s in _running.ToArray()) Finish(s, gone);
        foreach (var s in _waiting.ToArray()) Finish(s, gone);
    }

    private void Publish()
    {
        Volatile.Write(ref _queued, _waiting.Count + _incoming.Count);
        Volatile.Write(ref _runningCount, _running.Count);
        Volatile.Write(ref _blocksInUse, _blocks.BlocksInUse);
    }

    private void ReapCancelled()
    {
        for (int i = _running.Count - 1; i >= 0; i--)
            if (_running[i].IsCancelled) Finish(_running[i], new OperationCanceledException("the request was cancelled"));
        for (var node = _waiting.First; node != null;)
        {
            var next = node.Next;
            if (node.Value.IsCancelled) Finish(node.Value, new OperationCanceledException("the request was cancelled"));
            node = next;
        }
    }

    /// <summary>Fills <see cref="_plan"/> and <see cref="_batch"/> for one step.</summary>
    private void Schedule()
    {
        _plan.Clear();
        if (SchedulePrunedPrompt()) return;
        int budget = Limits.MaxTokensPerStep;
        // 1. Decode-first: every running sequence with just its sampled token to run (a speculating one with its
        //    draft, from what the budget leaves after one token for each decoder still to come).
        //    A sequence amid Cautious NTP trials runs its round's forest, all of it or (when the step cannot hold it) none.
        int decoders = 0;
        foreach (var r in _running) decoders += r.Remaining == 1 ? 1 : TrialRows(r);
        var (prefillTokens, prefillBlocks) = PromptReserve();
        for (int i = 0; i < _running.Count && budget > 0; i++)
        {
            var seq = _running[i];
            seq.Drafting = seq.RunsTrials = false;
            if (TrialRows(seq) is > 0 and var rows)
            {
                decoders -= rows;
                if (rows > budget - decoders) continue;  // a token for every decoder after it comes first
                if (!Reserve(seq, rows, ref budget, exact: true)) break;
                seq.RunsTrials = true;
                continue;
            }
            if (seq.Remaining != 1) continue;
            decoders--;
            int n = seq.Proposer is null ? 1 : PlanDraft(seq, budget - decoders - prefillTokens, decoders + prefillBlocks);
            if (n == 0) { i--; continue; }       // its proposer failed: it was finished (and left _running)
            if (!Reserve(seq, n, ref budget)) break; // seq was the newest left: nothing after it runs
            if (seq.Drafting)
            {
                // Reserve may have cut the rows to the blocks there are: keep that many (still a tree).
                seq.Draft!.Truncate(_plan[^1].Tokens);
                seq.Drafting = seq.Draft.Count > 1;
                if (!seq.Drafting) _plan[^1] = (seq, 1);
            }
        }
        // 2. Running prompts not yet fully prefilled (admitted earlier, or shrunk by the budget): next chunks.
        for (int i = 0; i < _running.Count && budget > 0; i++)
        {
            var seq = _running[i];
            if (seq.Remaining <= 1 || Planned(seq) >= 0) continue;
            if (!Reserve(seq, PromptChunk(seq, Math.Min(seq.Remaining, budget)), ref budget)) break;
        }
        // 3. Admit waiting requests (preempted ones first) while there is room, budget and blocks.
        while (_waiting.First is { } node && _running.Count < Limits.MaxSequences && budget > 0)
        {
            var seq = node.Value;
            if (seq.Pruning is { Armed: true }) break;   // its prompt runs as a step of its own (SchedulePrunedPrompt)
            // A request of several choices starts when all of them have a slot (they fork once its prompt is cached);
            // slots held for running leaders' choices count as taken.
            int reserved = seq.Followers?.Count ?? 0;
            foreach (var r in _running) reserved += r.Followers?.Count ?? 0;
            if (_running.Count + 1 + reserved > Limits.MaxSequences) break;
            // A scored prompt runs every row; a budgeted one keeps blocks of its own (its compaction rewrites them).
            if (seq.Blocks.Count == 0 && seq.PromptLogProbs is null && seq.Kv is null) TakeCachedPrefix(seq);
            int n = PromptChunk(seq, Math.Min(seq.Remaining, budget));
            n = Math.Min(n, (seq.Blocks.Count + _blocks.AvailableBlocks) * Limits.BlockSize - seq.Cached);
            if (n <= 0 || !Grow(seq, seq.Cached + n))
            {
                // No blocks for it now: give back what the prefix lookup took (it stays cached) and wait.
                ReleaseBlocks(seq);
                break;
            }
            _waiting.RemoveFirst();
            _running.Add(seq);
            if (!seq.Admitted) seq.AdmittedStep = Steps;
            seq.Admitted = true;
            _plan.Add((seq, n));
            budget -= n;
        }
        BuildBatch();
    }

    /// <summary>
    /// A pruned prompt runs as a step of its own (the model prunes one sequence's chain), so when the next waiting
    /// request has one armed and a slot and blocks for its whole prompt, this step is that prompt alone: the running
    /// requests skip one step. Returns whether it planned it.
    /// </summary>
    private bool SchedulePrunedPrompt()
    {
        if (_waiting.First?.Value is not { Pruning.Armed: true } seq) return false;
        int reserved = seq.Followers?.Count ?? 0;   // slots held for running leaders' choices count as taken
        foreach (var r in _running) reserved += r.Followers?.Count ?? 0;
        if (_running.Count + 1 + reserved > Limits.MaxSequences) return false;
        // No cached prefix: the whole prompt is ranked, as the single-sequence generator ranks it.
        int n = seq.Remaining;
        if (n < 2 || !Grow(seq, seq.Cached + n))
        {
            if (n < 2) seq.Pruning!.Armed = false;  // nothing to prune: it runs as a plain prompt
            else ReleaseBlocks(seq);                // no blocks now: wait, while the others run
            return false;
        }
        _waiting.RemoveFirst();
        _running.Add(seq);
        if (!seq.Admitted) seq.AdmittedStep = Steps;
        seq.Admitted = true;
        _plan.Add((seq, n));
        BuildBatch();
        return true;
    }

    /// <summary>The ragged batch of the plan, in plan order, with each sequence's prompt pruning.</summary>
    private void BuildBatch()
    {
        _batch.Clear();
        for (int i = 0; i < _plan.Count; i++) _state.Pruning[i] = _plan[i].Seq.Pruning;
        foreach (var (seq, n) in _plan)
        {
            if (seq.Drafting)
                _batch.AddTree(seq.Draft!.Tokens.AsSpan(0, n), seq.Draft.Parents.AsSpan(0, n), seq.Computed, CollectionsMarshal.AsSpan(seq.Blocks));
            else if (seq.RunsTrials)
                _batch.AddTree(seq.Trials!.RoundTokens, seq.Trials.RoundParents, seq.Computed, CollectionsMarshal.AsSpan(seq.Blocks), seq.Trials.RoundLogitsFrom);
            else
                _batch.Add(CollectionsMarshal.AsSpan(seq.Tokens).Slice(seq.Computed, n), seq.Cached, CollectionsMarshal.AsSpan(seq.Blocks),
                    seq.PromptLogProbs is null ? RowLogits.Last : RowLogits.All, seq.Computed);
        }
        RequestScores();
        Publish();
    }

    /// <summary>
    /// What drafts must leave for prompts this step, in tokens and blocks: drafts are opportunistic (lossless, but
    /// only a guess), so they never delay a prompt's prefill nor take the blocks it needs. Prompts may have up to half
    /// of the step's budget (the rest keeps drafting worth it while a long prompt is prefilled); every prompt that
    /// could run (running and not yet prefilled, or waiting with a free slot) counts, with one block more each for
    /// where its chunk starts inside a block.
    /// </summary>
    private (int Tokens, int Blocks) PromptReserve()
    {
        int tokens = 0, prompts = 0;
        foreach (var r in _running)
            if (r.Remaining > 1) { tokens += r.Remaining; prompts++; }
        int slots = Limits.MaxSequences - _running.Count;
        for (var node = _waiting.First; node != null && slots-- > 0; node = node.Next)
        {
            tokens += node.Value.Remaining;
            prompts++;
        }
        tokens = Math.Min(tokens, Limits.MaxTokensPerStep / 2);
        return (tokens, (tokens + Limits.BlockSize - 1) / Limits.BlockSize + prompts);
    }

    /// <summary>
    /// Asks a speculating sequence's proposer for a draft below its next input and returns the rows to plan (1 when
    /// it does not draft, 0 when the proposer failed and the sequence was finished). The draft fits <paramref name="budget"/> (the step's tokens left after one for each decoder
    /// still to plan and the prompts' reserve), the blocks free now less <paramref name="blocksToLeave"/> (speculation
    /// never preempts anyone), the context, and the tokens still to generate; with the adaptive budget, its size is
    /// what measured passes say pays.
    /// </summary>
    private int PlanDraft(Sequence seq, int budget, int blocksToLeave)
    {
        seq.Drafting = false;
        var tree = seq.Draft!;
        int room = Math.Min(tree.Tokens.Length - 1, budget - 1);
        room = Math.Min(room, Limits.ContextSize - seq.Computed - 1);
        room = Math.Min(room, (seq.Blocks.Count + _blocks.AvailableBlocks - blocksToLeave) * Limits.BlockSize - seq.Computed - 1);
        int depth = seq.Options.MaxTokens - seq.Generated - 1;
        if (depth <= 0) room = 0;
        if (seq.Budget is not null) room = seq.Budget.DraftLength(room);
        seq.Asked = room;
        var tokens = CollectionsMarshal.AsSpan(seq.Tokens);
        tree.Reset(tokens[seq.Computed], room + 1, depth);
        if (room <= 0) return 1;
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            seq.Proposer!.Propose(tokens[..(seq.Computed + 1)], tree);
        }
        catch (Exception e)
        {
            // A proposer that fails (a draft model's pass) fails its own request, not the step's others.
            Finish(seq, new InvalidOperationException($"the draft proposer failed: {e.Message}", e));
            return 0;
        }
        seq.ProposeTicks = System.Diagnostics.Stopwatch.GetTimestamp() - t0;
        seq.Drafting = tree.Count > 1;
        return tree.Count;
    }

    /// <summary>The rows of the trial round <paramref name="seq"/> runs next (0 when it is not amid trials, or is
    /// recomputing its tokens after a preemption).</summary>
    private static int TrialRows(Sequence seq) => seq.Trials is { Active: true } t && seq.Remaining == 0 ? t.RoundTokens.Length : 0;

    private int Planned(Sequence seq)
    {
        for (int i = 0; i < _plan.Count; i++) if (ReferenceEquals(_plan[i].Seq, seq)) return i;
        return -1;
    }

    /// <summary>Plans <paramref name="n"/> tokens of running <paramref name="seq"/>, preempting the newest running
    /// sequences until its blocks fit. Returns false when <paramref name="seq"/> itself was preempted; a preempted
    /// sequence already planned gives its budget back. Rows that must run together (<paramref name="exact"/>) are
    /// never cut.</summary>
    private bool Reserve(Sequence seq, int n, ref int budget, bool exact = false)
    {
        while (true)
        {
            // A prefill chunk shrinks to the blocks there are before anyone is preempted for it.
            int fit = (seq.Blocks.Count + _blocks.AvailableBlocks) * Limits.BlockSize - seq.Cached;
            if (n > 1 && fit > 0 && !exact) n = Math.Min(n, fit);
            if (Grow(seq, seq.Cached + n))
            {
                _plan.Add((seq, n));
                budget -= n;
                return true;
            }
            var victim = _running[^1];
            int at = Planned(victim);
            if (at >= 0)
            {
                budget += _plan[at].Tokens;
                _plan.RemoveAt(at);
            }
            Preempt(victim);
            if (ReferenceEquals(victim, seq)) return false;
        }
    }

    /// <summary>Gives <paramref name="seq"/> blocks for positions up to <paramref name="positions"/> - 1; on failure
    /// keeps what it had (blocks taken here are given back).</summary>
    private bool Grow(Sequence seq, int positions)
    {
        int need = (positions + Limits.BlockSize - 1) / Limits.BlockSize - seq.Blocks.Count;
        if (need <= 0) return true;
        if (need > _blocks.AvailableBlocks) return false;
        for (int i = 0; i < need; i++)
        {
            _blocks.TryAllocate(out int b); // cannot fail: checked above, and nothing else allocates meanwhile
            seq.Blocks.Add(b);
        }
        return true;
    }

    private void Preempt(Sequence seq)
    {
        seq.Drafting = seq.RunsTrials = false;  // recomputed later as a prompt, not as this step's tree
        _running.Remove(seq);
        ReleaseBlocks(seq);
        _waiting.AddFirst(seq);
        Interlocked.Increment(ref _preemptions);
        seq.TimesPreempted++;
        if (seq.Trials is { Active: true }) PreemptedAmidTrials++;
        if (seq.PromptLogProbs is not null) PreemptedWhileScoring++;
    }

    /// <summary>Starts <paramref name="seq"/> from the cached full blocks of its tokens (never the last token: its
    /// logits must be computed).</summary>
    private void TakeCachedPrefix(Sequence seq)
    {
        int bs = Limits.BlockSize;
        var tokens = CollectionsMarshal.AsSpan(seq.Tokens);
        ulong parent = 0;
        for (int b = 0; (b + 1) * bs <= tokens.Length - 1; b++)
        {
            var span = tokens.Slice(b * bs, bs);
            ulong hash = BlockManager.ChainHash(parent, span);
            int block = _blocks.Lookup(hash, parent, span);
            if (block < 0) break;
            seq.Blocks.Add(block);
            seq.BlockHashes.Add(hash);
            parent = hash;
        }
        seq.Computed = seq.Blocks.Count * bs;
        if (!seq.Admitted)
        {
            seq.PrefixHitTokens = seq.Computed;
            Interlocked.Add(ref _prefixHitTokens, seq.Computed);
        }
    }

    private void ReleaseBlocks(Sequence seq)
    {
        foreach (int b in seq.Blocks) _blocks.Release(b);
        seq.Blocks.Clear();
        seq.BlockHashes.Clear();
        seq.Computed = seq.Dropped = 0;
        seq.Kv?.Reset();       // recomputed from its tokens under the same budget
        seq.Pruning?.Clear();  // a pruned prompt preempted after its step is recomputed in full (its tokens may pass a step)
    }

    /// <summary>A budgeted sequence's prompt chunk ends at the next multiple of <see cref="Kv.KvBudget.PromptChunk"/>
    /// positions, where it is compressed, so what it keeps does not depend on the step's load.</summary>
    private static int PromptChunk(Sequence seq, int n) =>
        seq.Kv is null ? n : Math.Min(n, Kv.KvBudget.PromptChunk - seq.Computed % Kv.KvBudget.PromptChunk);

    /// <summary>Asks attention for the scores the step's budgeted sequences' policies need (none: attention computes
    /// nothing extra).</summary>
    private void RequestScores()
    {
        _state.Scores?.Clear();
        for (int i = 0; i < _plan.Count; i++)
        {
            var (seq, n) = _plan[i];
            if (seq.Kv is not { } kv || kv.ScoreFrom(n) is var from && from < 0) continue;
            (_state.Scores ??= new Backends.AttentionScores()).Request(i, from, kv.Policy.Kind, kv.Temperature, kv.Options.Seed);
        }
    }

    /// <summary>After a step of <paramref name="n"/> rows of budgeted <paramref name="seq"/> (plan position
    /// <paramref name="i"/>): its budget observes the scores and compresses; the kept rows' keys and values move
    /// within its blocks (its own: it takes no cached prefix, registers none and never forks) and the blocks past
    /// its rows go back to the pool, so memory really drops.</summary>
    private void Compress(Sequence seq, int i, int n)
    {
        var kv = seq.Kv!;
        var received = _state.Scores is { } scores && scores.FromRow(i) >= 0 ? scores.Of(i) : default;
        if (_kvFrom.Length < kv.Capacity) { _kvFrom = new int[kv.Capacity]; _kvTo = new int[kv.Capacity]; }
        // Inside the prompt only at chunk boundaries (see PromptChunk); every step after it.
        bool compress = seq.Computed >= seq.PromptLength || seq.Computed % Kv.KvBudget.PromptChunk == 0;
        int moves = kv.AfterStep(seq.Computed - n, n, received, _kvFrom, _kvTo, compress);
        int bs = Limits.BlockSize;
        for (int m = 0; m < moves; m++)
        {
            _kvFrom[m] = seq.Blocks[_kvFrom[m] / bs] * bs + _kvFrom[m] % bs;
            _kvTo[m] = seq.Blocks[_kvTo[m] / bs] * bs + _kvTo[m] % bs;
        }
        if (moves > 0) _model.Backend.CopyKv(_state.Cache, _kvFrom.AsSpan(0, moves), _kvTo.AsSpan(0, moves));
        int dropped = seq.Computed - kv.Count - seq.Dropped;
        if (dropped > 0) Interlocked.Add(ref _kvDropped, dropped);
        seq.Dropped = seq.Computed - kv.Count;
        _blocks.Truncate(seq.Blocks, seq.Cached);
    }

    /// <summary>After a step: move each planned sequence on, register its newly full blocks, sample where its
    /// logits are due.</summary>
    private void Advance(long stepStart)
    {
        var deviceTokens = SampleOnDevice();
        // The step's time once its logits (or the device's draws) are on the host: on CUDA the forward only enqueues.
        _stepTicks = System.Diagnostics.Stopwatch.GetTimestamp() - stepStart;
        int bs = Limits.BlockSize;
        for (int i = 0; i < _plan.Count; i++)
        {
            var (seq, n) = _plan[i];
            if (seq.RunsTrials)
            {
                AbsorbTrials(seq, i);
                continue;
            }
            if (seq.Drafting)
            {
                if (!Verify(seq, i)) continue;  // it ended inside the draft
            }
            else
            {
                int promptRows = Math.Clamp(seq.PromptLength - seq.Computed, 0, n);
                if (promptRows > 0) Interlocked.Add(ref _promptComputed, promptRows);
                if (seq.PromptLogProbs is not null) ScorePrompt(seq, i, n);
                seq.Computed += n;
                if (seq.Kv is not null) Compress(seq, i, n);
                if (seq.Remaining == 0 && seq.Options.Speculation is not null && !StartSpeculation(seq)) continue;
                if (seq.Proposer is not null && seq.Remaining == 0)
                {
                    // A plain step teaches a learning proposer too (before the sampler's penalties touch the row).
                    seq.Draft!.Reset(seq.Tokens[seq.Computed - 1], 1);
                    seq.Proposer.Observe(seq.Draft, _state.SequenceLogits(i), _model.Config.VocabSize);
                }
                if (seq.Budget is not null && n == 1) seq.Budget.Record(0, ShareOfStep(n), 0);
            }
            var tokens = CollectionsMarshal.AsSpan(seq.Tokens);
            // A budgeted or pruned sequence's blocks do not hold its tokens' keys and values in every layer: never shared.
            while (seq.Kv is null && seq.Pruning is null && (seq.BlockHashes.Count + 1) * bs <= seq.Computed)
            {
                int b = seq.BlockHashes.Count;
                ulong parent = b == 0 ? 0 : seq.BlockHashes[b - 1];
                var span = tokens.Slice(b * bs, bs);
                ulong hash = BlockManager.ChainHash(parent, span);
                _blocks.Register(seq.Blocks[b], hash, parent, span);
                seq.BlockHashes.Add(hash);
            }
            if (seq.Remaining == 0)
            {
                if (seq.Followers is not null) ForkFollowers(seq, _state.SequenceLogits(i));
                if (deviceTokens is null) Sample(seq, _state.SequenceLogits(i));
                else Accept(seq, deviceTokens[i]);
            }
        }
        Publish();
    }

    /// <summary>
    /// A chunk of a scored prompt ran with logits for every row: row r (position Computed + r) gives the next prompt
    /// token's log-probability. A prompt recomputed after a preemption skips the ones it already has. Once the prompt
    /// is done they go out on one chunk, before the first token; with no token to generate the request ends there.
    /// </summary>
    private void ScorePrompt(Sequence seq, int i, int n)
    {
        var list = seq.PromptLogProbs!;
        int top = seq.Options.LogProbs ?? 0;
        for (int r = 0; r < n; r++)
        {
            int target = seq.Computed + r + 1;
            if (target >= seq.PromptLength) break;
            if (target != list.Count + 1) continue;
            list.Add(TokenLogProb.Compute(_state.RowLogits(_batch.LogitStart[i] + r), seq.Tokens[target], top));
        }
        if (seq.Computed + n < seq.PromptLength) return;
        seq.PromptLogProbs = null;
        seq.Emit(new GenerationChunk("", [], null) { PromptLogProbs = list });
    }

    /// <summary>
    /// The draft of plan position <paramref name="i"/> was run as a tree: draw from its rows as plain decoding would
    /// (see <see cref="TextGenerator"/>: each token with the sequence's own sampler, from the row of the node reached;
    /// the walk moves to the child holding the token drawn, and stops at the first token no child holds), then move
    /// the accepted path's keys and values into place and drop the tree's other rows and any blocks only they used.
    /// Returns false when the sequence ended inside the walk (its blocks are already released).
    /// </summary>
    private bool Verify(Sequence seq, int i)
    {
        var tree = seq.Draft!;
        var path = seq.Path;
        int start = seq.Computed, first = _batch.LogitStart[i], node = 0, accepted = 0, vocab = _model.Config.VocabSize;
        path[0] = 0;
        seq.Drafting = false;
        seq.Proposer!.Observe(tree, _state.Logits.AsSpan(first * vocab, tree.Count * vocab), vocab);  // before any penalty
        while (true)
        {
            seq.Computed = start + accepted + 1;  // the root and the accepted nodes are cached
            Sample(seq, _state.RowLogits(first + node));
            if (seq.Finished) break;
            int child = tree.Child(node, seq.Tokens[^1]);
            if (child < 0) break;
            node = child;
            path[++accepted] = child;
        }
        seq.DraftedTokens += tree.Count - 1;
        seq.AcceptedTokens += accepted;
        Interlocked.Add(ref _draftedTokens, tree.Count - 1);
        Interlocked.Add(ref _acceptedTokens, accepted);
        seq.Budget?.Record(seq.Asked, ShareOfStep(tree.Count) + seq.ProposeTicks, accepted);
        if (seq.Finished) return false;
        int moves = 0, bs = Limits.BlockSize;
        for (int k = 1; k <= accepted; k++)
        {
            if (path[k] == k) continue;
            int from = start + path[k], to = start + k;
            _copyFrom[moves] = seq.Blocks[from / bs] * bs + from % bs;
            _copyTo[moves++] = seq.Blocks[to / bs] * bs + to % bs;
        }
        if (moves > 0) _model.Backend.CopyKv(_state.Cache, _copyFrom.AsSpan(0, moves), _copyTo.AsSpan(0, moves));
        _blocks.Truncate(seq.Blocks, seq.Computed);
        return true;
    }

    /// <summary>
    /// The leader's prompt is cached and <paramref name="logits"/> are its next-token logits: start each of its
    /// request's other choices from them. A follower shares the prompt's full blocks, gets a copy of the partial last
    /// one (<see cref="BlockManager.TryFork"/>), and draws its first token from a copy of the row with its own sampler,
    /// so the prompt is computed once for all choices. A follower with no free slot or block waits at the head of the
    /// queue instead and computes what the prefix cache does not hold: the same tokens, only slower.
    /// </summary>
    private void ForkFollowers(Sequence leader, ReadOnlySpan<float> logits)
    {
        var followers = leader.Followers!;
        leader.Followers = null;
        int bs = Limits.BlockSize;
        _forkLogits ??= new float[_model.Config.VocabSize];
        foreach (var f in followers)
        {
            if (f.IsCancelled) { f.Complete(new OperationCanceledException("the request was cancelled")); continue; }
            if (_running.Count >= Limits.MaxSequences || !_blocks.TryFork(leader.Blocks, leader.Computed, f.Blocks, out var copy))
            {
                f.Blocks.Clear();
                _waiting.AddFirst(f);
                continue;
            }
            for (int done = 0; done < copy.Slots; done += _copyFrom.Length)
            {
                int k = Math.Min(_copyFrom.Length, copy.Slots - done);
                for (int j = 0; j < k; j++)
                {
                    _copyFrom[j] = copy.From * bs + done + j;
                    _copyTo[j] = copy.To * bs + done + j;
                }
                _model.Backend.CopyKv(_state.Cache, _copyFrom.AsSpan(0, k), _copyTo.AsSpan(0, k));
            }
            f.Computed = leader.Computed;
            f.BlockHashes.AddRange(leader.BlockHashes);
            f.Admitted = true;
            f.AdmittedStep = leader.AdmittedStep;
            _running.Add(f);
            Interlocked.Increment(ref _forks);
            if (f.Options.Speculation is not null && !StartSpeculation(f)) continue;
            logits.CopyTo(_forkLogits);
            Sample(f, _forkLogits);
        }
    }

    /// <summary>
    /// The part of the last step's time charged to <paramref name="rows"/> of its rows: all of it when they were the
    /// whole step, else their share of its rows. On a machine whose passes cost in proportion to their rows (a CPU)
    /// that is their cost; where a pass costs the same at any size (a GPU reading weights) it over-charges a draft
    /// that shares a busy step, so drafts shrink as the batch grows, which is where they pay least.
    /// </summary>
    private long ShareOfStep(int rows) => _batch.Rows <= rows ? _stepTicks : _stepTicks * rows / _batch.Rows;

    /// <summary>
    /// Sets up speculation once a speculating sequence's prompt is in the cache: its proposer (made on this loop's
    /// thread, where a draft model's device buffers must live), shown the prompt, and the sequence's draft buffers.
    /// Returns false when that failed; the sequence then ends with the reason and the others run on.
    /// </summary>
    private bool StartSpeculation(Sequence seq)
    {
        if (seq.Proposer is not null) return true;  // recomputed after a preemption: it kept its proposer
        var spec = seq.Options.Speculation!;
        try
        {
            int limit = Math.Min(spec.DraftLimit, Math.Min(RaggedBatch.MaxTreeRows - 1, Limits.MaxTokensPerStep - 1));
            var proposer = (spec.Method == Speculation.SpeculationMethod.Self ? spec with { Target = _model } : spec)
                .CreateProposer(_model.Config.VocabSize, Limits.ContextSize, seq.Options.Sampling.Temperature);
            seq.Proposer = proposer;  // owned from here: Finish disposes it
            proposer.Begin(CollectionsMarshal.AsSpan(seq.Tokens)[..seq.PromptLength]);
            seq.Draft = new Speculation.DraftTree(limit + 1);
            seq.Path = new int[limit + 1];
            seq.Budget = spec.Adaptive && limit > 0 ? Speculation.DraftBudgets.For(_model, spec, limit) : null;
            return true;
        }
        catch (Exception e)
        {
            Finish(seq, new InvalidOperationException($"speculation ({spec.Method.ToString().ToLowerInvariant()}) could not start: {e.Message}", e));
            return false;
        }
    }

    /// <summary>On CUDA (unless <see cref="DeviceSampling.Enabled"/> is off), the tokens of every sequence whose logits
    /// are due this step, drawn on the device in one launch, indexed by plan position; only the ids cross to the host.
    /// Null when the step samples on the host: on the CPU, or when a due sequence needs the logits there (penalties,
    /// log-probabilities, too many candidates), in which case they are read now.</summary>
    private int[]? SampleOnDevice()
    {
        if (_deviceSampler is null) return null;
        // Every due sequence must draw on the device before any uniform number is taken from a generator; a draft
        // tree is walked on the host (its rows are drawn one after another, each depending on the last).
        bool host = _batch.HasTrees;
        foreach (var (seq, n) in _plan)
            if ((seq.Remaining == n && (!seq.DrawsOnDevice || seq.Followers is not null))  // followers draw from its row
                || seq.PromptLogProbs is not null) host = true;                              // a scored prompt's every row
        if (host)
        {
            _model.ReadLogits(_state, _batch.LogitRows);
            return null;
        }
        int r = 0;
        for (int i = 0; i < _plan.Count; i++)
        {
            var (seq, n) = _plan[i];
            if (seq.Remaining != n) continue;  // mid-prompt: no token this step
            var o = seq.Options.Sampling;
            // One uniform number from the sequence's own generator, exactly when the host sampler would draw it.
            double u = o.Temperature > 0 ? seq.Sampler.NextUniform() : 0;
            _requests[r++] = new SampleRequest(i, o.TopK, o.TopP, o.MinP, o.Temperature, u);
        }
        if (r == 0) return _deviceTokens;
        _deviceSampler.SampleRows(_state.LogitsBuffer, _model.Config.VocabSize, _plan.Count, _requests.AsSpan(0, r), _sampledIds);
        Interlocked.Add(ref DeviceSampling.ServedTokens, r);
        for (int k = 0; k < r; k++) _deviceTokens[_requests[k].Row] = _sampledIds[k];
        return _deviceTokens;
    }

    /// <summary>The host's draw from <paramref name="logits"/> (kept first when log-probabilities were asked for).</summary>
    private void Sample(Sequence seq, Span<float> logits)
    {
        if (seq.Options.MaxTokens == 0)
        {
            End(seq, FinishReason.MaxTokens);  // a prompt scored for its log-probabilities, nothing generated
            return;
        }
        if (seq.Options.Cautious is not null)
        {
            SampleCautiously(seq, logits);
            return;
        }
        if (seq.RawLogits is { } raw) logits.CopyTo(raw);
        Accept(seq, seq.Sampler.Sample(logits));
    }

    /// <summary>
    /// Cautious NTP's draw (as <see cref="TextGenerator"/>'s, draw for draw): where the distribution's entropy calls
    /// for several trials, they start here and run as this sequence's forest in the next steps (<see cref="AbsorbTrials"/>);
    /// else the token drawn is taken. A sequence recomputed amid its trials (after a preemption) ignores this row:
    /// its trials go on from where they were.
    /// </summary>
    private void SampleCautiously(Sequence seq, Span<float> logits)
    {
        var o = seq.Options.Cautious!;
        var trials = seq.Trials ??= new CautiousTrials(_model, _tokenizer, o);
        if (trials.Active) return;
        logits.CopyTo(trials.Raw);
        int first = seq.Sampler.SampleMeasured(logits, out double p, out double entropy);
        int n = o.TrialsFor(entropy);
        if (n <= 1 || seq.Computed >= Limits.ContextSize)
        {
            Accept(seq, first);
            return;
        }
        // A round's forest must fit one step beside one token for every other sequence, so it can always run.
        int maxRows = Math.Min(RaggedBatch.MaxTreeRows, Limits.MaxTokensPerStep - (Limits.MaxSequences - 1));
        trials.Start(seq.Sampler, trials.Raw, first, p, n, seq.Options.MaxTokens - seq.Generated, Limits.ContextSize - seq.Computed, maxRows);
        if (!trials.Active) KeepTrial(seq);
    }

    /// <summary>A trial round of plan position <paramref name="i"/> ran: each live trial draws from its newest row;
    /// when all are done, the kept one's tokens are taken.</summary>
    private void AbsorbTrials(Sequence seq, int i)
    {
        seq.RunsTrials = false;
        var trials = seq.Trials!;
        int vocab = _model.Config.VocabSize;
        trials.Absorb(seq.Sampler, _state.Logits.AsSpan(_batch.LogitStart[i] * vocab, _batch.LogitCount[i] * vocab));
        if (!trials.Active) KeepTrial(seq);
    }

    /// <summary>Takes the kept trial's tokens one by one through <see cref="Accept"/> (every stop rule applies to each):
    /// they join the sequence's tokens uncached, so its next step runs them as one chunk, whose last row gives the
    /// next draw. The forest's rows beyond the cached tokens give back their blocks.</summary>
    private void KeepTrial(Sequence seq)
    {
        int len = seq.Trials!.Finish(_cautious);
        _blocks.Truncate(seq.Blocks, seq.Computed);
        for (int k = 0; k < len && !seq.Finished; k++) Accept(seq, seq.Trials.Kept[k]);
    }

    /// <summary>The same steps, in the same order, as <see cref="TextGenerator"/> after each forward pass, for the
    /// token just drawn (on the host or the device).</summary>
    private void Accept(Sequence seq, int token)
    {
        var o = seq.Options;
        long step = Steps - 1; // Advance runs after the step was counted
        if (seq.FirstTokenStep < 0) seq.FirstTokenStep = step;
        else seq.MaxStepsBetweenTokens = Math.Max(seq.MaxStepsBetweenTokens, step - seq.LastTokenStep);
        seq.LastTokenStep = step;
        var logProb = seq.RawLogits is null ? null : TokenLogProb.Compute(seq.RawLogits, token, o.LogProbs!.Value);
        seq.Sampler.Accept(token);
        seq.Generated++;
        if (o.StopAtEndOfGeneration && _tokenizer.IsEndOfGeneration(token))
        {
            End(seq, FinishReason.EndOfGeneration);
            return;
        }
        var (text, stopped) = seq.Stops.Add(seq.Healed.Take(seq.Decoder.Add(token)));
        seq.Emit(new GenerationChunk(text, [token], null) { LogProbs = logProb is null ? [] : [logProb] });
        if (stopped) End(seq, seq.Stops.EndedGeneration ? FinishReason.EndOfGeneration : FinishReason.StopString, flush: false);
        else if (seq.Sampler.Constraint is { IsComplete: true }) End(seq, FinishReason.EndOfGeneration);  // the grammar is complete
        else if (seq.Cached >= Limits.ContextSize) End(seq, FinishReason.ContextFull);
        else if (seq.Generated >= o.MaxTokens) End(seq, FinishReason.MaxTokens);
        else seq.Tokens.Add(token);
    }

    /// <summary>Ends <paramref name="seq"/>, releasing the text still held unless a stop string ended it (what was
    /// held is the stop's start, never shown).</summary>
    private void End(Sequence seq, FinishReason reason, bool flush = true)
    {
        if (flush)
        {
            string tail = seq.Stops.Add(seq.Healed.Take(seq.Decoder.Flush())).Release + seq.Stops.Flush();
            if (tail.Length > 0) seq.Emit(new GenerationChunk(tail, [], null));
        }
        seq.Emit(new GenerationChunk("", [], reason));
        Finish(seq, null);
    }

    /// <summary>Frees the sequence's blocks and slot and closes its stream.</summary>
    private void Finish(Sequence seq, Exception? error)
    {
        if (seq.Followers is { } pending)
        {
            // The request's other choices had not started: they end with it (only a failure or a cancel gets here).
            seq.Followers = null;
            foreach (var f in pending) f.Complete(error ?? new InvalidOperationException("the request ended before its choices started"));
        }
        if (_running.Remove(seq) || _waiting.Remove(seq)) ReleaseBlocks(seq);
        (seq.Proposer as IDisposable)?.Dispose();  // a draft model's cache
        seq.Complete(error);
    }

    /// <summary>Stops the loop; requests still queued or running end with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _wake.Set();
        _thread.Join();
        _model.Backend.UseOnCurrentThread();  // device buffers are freed from this thread
        _state.Dispose();
        _wake.Dispose();
    }
}
