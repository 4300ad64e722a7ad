using System.Numerics.Tensors;
using Tessera.Model;

namespace Tessera.Speculation;

/// <summary>
/// A smaller model with the same vocabulary drafts for the target (classic speculative decoding; e.g. a Q4_0 of the
/// same model drafting for its F16, as llama.cpp users run it): greedy tokens, one draft-model step each, as a chain.
/// Its own KV cache is kept in step with the target's context: before each draft it rewinds to the longest prefix it
/// shares with the context (the accepted tokens stay cached, a rejected tail is dropped) and runs what is new in one
/// batched pass. Greedy drafting is deterministic, so verification's point-mass rule keeps sampling exact too.
/// With <see cref="DraftTreeShape.Dynamic"/> it drafts a tree instead, grown where the draft is confident
/// (<see cref="DynamicTreeGrower"/>, DySpec).
/// </summary>
public sealed class DraftModelProposer : IDraftProposer, IDisposable
{
    private readonly LlamaModel _draft;
    private readonly RunState _state;
    private readonly int[] _cached;   // the tokens whose keys and values the draft's cache holds, in order
    private readonly int[] _one = new int[1];
    private int _offset;              // the context position of the draft cache's position 0
    private readonly DynamicTreeGrower? _grower;   // null: greedy chains

    /// <summary>Most context tokens a draft catches up on in one go; further behind, it restarts from this many.</summary>
    public const int CatchUpWindow = 32;

    /// <summary>A proposer drafting with <paramref name="draft"/> over a context of <paramref name="contextSize"/>
    /// tokens: greedy chains, or with <paramref name="shape"/> <see cref="DraftTreeShape.Dynamic"/> trees of up to
    /// <paramref name="treeRows"/> rows for a target sampling at <paramref name="temperature"/> (0: greedy).</summary>
    public DraftModelProposer(LlamaModel draft, int contextSize, DraftTreeShape shape = DraftTreeShape.Static, int treeRows = 1, float temperature = 0)
    {
        ArgumentNullException.ThrowIfNull(draft);
        _draft = draft;
        int context = Math.Min(contextSize, draft.Config.ContextLength);
        // Batches of up to 64 rows (the catch-up after a long accepted run, a prompt in chunks), or a whole dynamic tree.
        int rows = shape == DraftTreeShape.Dynamic ? Math.Clamp(treeRows, 64, Backends.RaggedBatch.MaxTreeRows) : 64;
        _state = draft.CreateState(context, Math.Min(rows, context));
        _cached = new int[context];
        if (shape == DraftTreeShape.Dynamic)
            _grower = new DynamicTreeGrower(draft, Math.Min(rows, context)) { ScoreTemperature = DynamicTreeGrower.ScoreTemperatureFor(temperature) };
    }

    /// <summary>The draft model's KV cache and buffers: what this proposer holds per sequence.</summary>
    public long StateBytes => (long)_state.ContextSize * _draft.Config.Layers * _draft.Config.KvDim * 2 * sizeof(short);

    /// <inheritdoc/>
    public void Begin(ReadOnlySpan<int> prompt)
    {
        // All but the last token: the first draft runs that one and reads its logits.
        _state.Rewind(0);
        _offset = 0;
        if (prompt.Length > 1 && prompt.Length <= _state.ContextSize) Run(prompt[..^1]);
    }

    /// <inheritdoc/>
    public void Propose(ReadOnlySpan<int> context, DraftTree tree)
    {
        if (context.IsEmpty || tree.IsFull) return;
        if (_offset > context.Length - 1) { _offset = 0; _state.Rewind(0); }
        // The longest prefix the draft's cache shares with the context (from _offset), then what is new since.
        int common = 0, limit = Math.Min(_state.Position, context.Length - 1 - _offset);
        while (common < limit && _cached[common] == context[_offset + common]) common++;
        int behind = context.Length - _offset - common;
        if (behind > Math.Max(CatchUpWindow, tree.Limit + 1) || context.Length - _offset + tree.Limit > _state.ContextSize)
        {
            // Far behind (drafting was off for a while) or out of room: restart from the last CatchUpWindow tokens
            // rather than run everything since, so that an occasional probe costs a bounded pass. The draft then
            // sees a shorter context, at other positions: its guesses may be worse, never the output.
            _offset = Math.Max(0, context.Length - CatchUpWindow);
            common = 0;
        }
        // The draft runs the new context tokens, then one step per drafted token but the last; all of it must fit.
        int room = Math.Min(tree.Limit - tree.Count, _state.ContextSize - (context.Length - _offset));
        if (room <= 0) return;
        _state.Rewind(common);
        if (_grower is not null)
        {
            // The tree's passes run the root as their row 0: the cache takes the context up to it.
            if (context.Length - 1 > _offset + common) Run(context[(_offset + common)..^1]);
            if (tree.Limit - tree.Count > 0 && tree.Limit <= _state.MaxBatch) _grower.Grow(_state, tree);
            return;
        }
        Run(context[(_offset + common)..]);
        int parent = 0;
        for (int k = 0; k < room; k++)
        {
            int next = TensorPrimitives.IndexOfMax<float>(_state.Logits);
            parent = tree.Add(parent, next);
            if (parent < 0 || k + 1 == room) break;
            _one[0] = next;
            Run(_one);
        }
    }

    private void Run(ReadOnlySpan<int> tokens)
    {
        tokens.CopyTo(_cached.AsSpan(_state.Position));
        _draft.Forward(_state, tokens);
    }

    /// <summary>Frees the draft's cache for this sequence.</summary>
    public void Dispose() => _state.Dispose();
}
