using Tessera.Backends;
using Tessera.Kv;
using Tessera.Pruning;

namespace Tessera.Model;

/// <summary>
/// The mutable state of one sequence: a <see cref="BatchState"/> for one sequence whose paged KV cache holds its
/// blocks in order, the step layout reused by every call (no allocation per token), and the position reached. The
/// model runs it through its one forward step, so a sequence alone computes exactly what it computes in a batch.
/// </summary>
public sealed class RunState : IDisposable
{
    /// <summary>Positions per KV block of a single sequence's cache.</summary>
    internal const int BlockSize = 16;

    private readonly IBackend _backend;
    private readonly int[] _from, _to, _moveFrom, _moveTo;
    private readonly int _layers;
    private readonly LlamaConfig _config;

    internal RunState(LlamaConfig c, IBackend backend, int contextSize, int maxBatch)
    {
        if (contextSize <= 0) throw new ArgumentOutOfRangeException(nameof(contextSize), "context size must be positive");
        if (maxBatch <= 0) throw new ArgumentOutOfRangeException(nameof(maxBatch), "batch size must be positive");
        _backend = backend;
        _config = c;
        _layers = c.Layers;
        ContextSize = contextSize;
        MaxBatch = maxBatch;
        int blocks = (contextSize + BlockSize - 1) / BlockSize;
        Table = new int[blocks];
        for (int i = 0; i < blocks; i++) Table[i] = i;
        Batched = new BatchState(c, backend, maxBatch, 1, blocks, BlockSize, contextSize);
        Batch = new RaggedBatch(maxBatch, 1, blocks, BlockSize);
        Logits = new float[c.VocabSize];
        _from = new int[Math.Min(maxBatch, RaggedBatch.MaxTreeRows)];
        _to = new int[_from.Length];
        _moveFrom = new int[contextSize];
        _moveTo = new int[contextSize];
    }

    /// <summary>Positions the cache holds.</summary>
    public int ContextSize { get; }
    /// <summary>Most tokens per backend call; longer inputs run in chunks.</summary>
    public int MaxBatch { get; }
    /// <summary>The RoPE position of the next token: tokens run so far. Equal to <see cref="Cached"/> unless a
    /// <see cref="KvBudget"/> dropped rows.</summary>
    public int Position { get; internal set; }
    /// <summary>Rows the cache holds (what the next token attends to, besides itself).</summary>
    public int Cached { get; internal set; }
    /// <summary>The KV budget that keeps <see cref="Cached"/> within its cap, or null (the default: nothing is dropped).
    /// Set it with <see cref="UseKvBudget"/>.</summary>
    public KvBudget? KvPolicy { get; private set; }

    /// <summary>Caps this sequence's cache with <paramref name="options"/> (null: no cap). The rows cached so far
    /// are taken as they are; a budget already set with the same options stays (a chat goes on with its scores).</summary>
    /// <exception cref="InvalidOperationException">The budget would change after rows were dropped.</exception>
    /// <exception cref="ArgumentException">The backend cannot compute the attention scores the policy needs.</exception>
    public void UseKvBudget(KvBudgetOptions? options)
    {
        if (options == KvPolicy?.Options) return;
        if (Cached != Position) throw new InvalidOperationException("the KV budget cannot change once it dropped rows; start a new sequence");
        if (options is not null && Batched.Pruning[0] is { HasHoles: true } or { Armed: true })
            throw new InvalidOperationException("--kv-budget: not together with --prefill-pruning (one drops rows of every layer, the other lays the cache out per layer)");
        if (options is null) { KvPolicy = null; Batched.Scores = null; return; }
        options.CheckBackend(_backend);
        options.CheckModel(_config);
        var budget = new KvBudget(options, ContextSize);
        KvPolicy = budget;
        Batched.Scores?.Clear();
        if (Cached > 0) ScoresRun(Cached);   // the rows so far, unscored: over the cap, the policy's order without scores
    }

    /// <summary>Prunes the next prompt step (the next <see cref="LlamaModel.Forward(RunState, ReadOnlySpan{int}, Span{float})"/>) with <paramref name="options"/>; null
    /// runs it in full. The layers' missing rows stay recorded until <see cref="Rewind"/>(0).</summary>
    /// <exception cref="InvalidOperationException">A KV budget is set, or the prompt was already pruned.</exception>
    /// <exception cref="ArgumentException">The backend cannot compute the attention scores pruning ranks by.</exception>
    public void UsePrefillPruning(PrefillPruningOptions? options)
    {
        if (options is null)
        {
            if (Batched.Pruning[0] is { } p) p.Armed = false;
            return;
        }
        options.CheckBackend(_backend);
        options.CheckModel(_config);
        if (KvPolicy != null) throw new InvalidOperationException("--prefill-pruning: not together with --kv-budget (one lays the cache out per layer, the other drops rows of every layer)");
        if (Batched.Pruning[0] is not { } pruning || pruning.Options != options)
        {
            if (Batched.Pruning[0] is { HasHoles: true }) throw new InvalidOperationException("the prompt pruning cannot change on a pruned sequence; start a new one");
            pruning = Batched.Pruning[0] = new PrefillPruning(options, _layers, MaxBatch, Table.Length, BlockSize);
        }
        if (pruning.HasHoles) throw new InvalidOperationException("this sequence's prompt was already pruned: start a new one (Rewind(0)) before pruning another");
        pruning.Armed = true;
    }

    /// <summary>What the last pruned prompt did, or null.</summary>
    public PrefillPruning? Pruning => Batched.Pruning[0];

    // Before a step of `rows` rows: ask attention for the scores the budget's policy needs.
    internal void RequestScores(int rows)
    {
        if (KvPolicy is not { } budget) return;
        int from = budget.ScoreFrom(rows);
        if (from < 0) { Batched.Scores?.Clear(); return; }
        var scores = Batched.Scores ??= new AttentionScores();
        scores.Clear();
        scores.Request(0, from, budget.Policy.Kind, budget.Temperature, budget.Options.Seed);
    }

    // After a step of `rows` rows (Cached and Position already past them): the budget records them, observes the
    // scores and compresses; the kept rows' keys and values move as it says.
    internal void ScoresRun(int rows, bool compress = true)
    {
        if (KvPolicy is not { } budget) return;
        var received = Batched.Scores is { Any: true } scores ? scores.Of(0) : default;
        int moves = budget.AfterStep(Position - rows, rows, received, _moveFrom, _moveTo, compress);
        for (int i = 0; i < moves; i++)
        {
            _moveFrom[i] = Slot(_moveFrom[i]);
            _moveTo[i] = Slot(_moveTo[i]);
        }
        if (moves > 0) _backend.CopyKv(Cache, _moveFrom.AsSpan(0, moves), _moveTo.AsSpan(0, moves));
        Cached = budget.Count;
    }
    /// <summary>Logits of the last token run, on the host.</summary>
    public float[] Logits { get; }

    internal BatchState Batched { get; }   // buffers, cache and logits of the step
    internal RaggedBatch Batch { get; }    // the layout of the step, refilled per call
    internal int[] Table { get; }          // blocks 0 .. n-1: the sequence owns the whole cache, in order
    internal KvCache Cache => Batched.Cache;
    internal Activation LogitsBuffer => Batched.LogitsBuffer;
    /// <summary>True while the logits are sampled where they are computed (on the GPU, <see cref="Sampling.DeviceSampling"/>):
    /// the forward pass then leaves them in <see cref="LogitsBuffer"/> and <see cref="Logits"/> is not updated.</summary>
    internal bool LogitsStayOnDevice { get; set; }

    /// <summary>Forgets everything after <paramref name="position"/>: truncation, the KV operation a chain needs (the
    /// cache keeps its memory; later tokens overwrite the dropped positions before anything reads them).</summary>
    public void Rewind(int position)
    {
        if (position < 0 || position > Position) throw new ArgumentOutOfRangeException(nameof(position));
        if (position == 0) { KvPolicy?.Reset(); Batched.Pruning[0]?.Clear(); }   // a new sequence in the same state
        else if (Batched.Pruning[0] is { HasHoles: true } pruned && position < pruned.HoleEnd && position != Position)
            throw new InvalidOperationException("a pruned prompt can only start over (Rewind(0)), not be cut inside");
        else if (KvPolicy != null && position != Position) throw new InvalidOperationException("a sequence with a KV budget can only start over (Rewind(0)), not step back");
        if (position != Position) Position = Cached = position;
    }

    /// <summary>
    /// Keeps the accepted path of the tree last run by <see cref="LlamaModel.ForwardTree"/>: <paramref name="rows"/>
    /// are its rows from the root down (row 0 first, each the parent of the next). Their keys and values move to
    /// the consecutive positions <c>Position ..</c> (where plain decoding would have put them; rows already there stay)
    /// and the position advances past them. Everything else the tree wrote is dropped.
    /// </summary>
    /// <exception cref="ArgumentException">The rows do not start at the root or do not increase.</exception>
    public void Accept(ReadOnlySpan<int> rows)
    {
        if (rows.IsEmpty) return;
        if (rows[0] != 0) throw new ArgumentException($"an accepted path starts at the root (row 0), not row {rows[0]}", nameof(rows));
        if (KvPolicy != null) throw new InvalidOperationException("a draft path cannot be accepted on a sequence with a KV budget");
        if (Position + rows[^1] >= ContextSize) throw new ArgumentException($"row {rows[^1]} lies past the context of {ContextSize}", nameof(rows));
        int moves = 0;
        for (int k = 1; k < rows.Length; k++)
        {
            // Children come after their parents, so the path's rows increase and each moves down (or stays): copied
            // in order, no copy overwrites a row still to be read.
            if (rows[k] <= rows[k - 1]) throw new ArgumentException($"accepted rows must increase (a path from the root): row {rows[k]} after {rows[k - 1]}", nameof(rows));
            if (rows[k] == k) continue;
            _from[moves] = Slot(Position + rows[k]);
            _to[moves++] = Slot(Position + k);
        }
        if (moves > 0) _backend.CopyKv(Cache, _from.AsSpan(0, moves), _to.AsSpan(0, moves));
        Position += rows.Length;
        Cached = Position;
    }

    // Pool slot of a cache position (its blocks are in order, so the position itself).
    private int Slot(int position) => Table[position / BlockSize] * BlockSize + position % BlockSize;

    /// <summary>Frees buffers and cache.</summary>
    public void Dispose() => Batched.Dispose();
}
