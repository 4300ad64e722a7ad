using System.Numerics.Tensors;
using Tessera.Model;

namespace Tessera.Speculation;

/// <summary>
/// A smaller model with the same vocabulary drafts for the target (classic speculative decoding; e.g. a Q4_0 of the
/// same model drafting for its F16, as llama.cpp users run it): greedy tokens, one draft-model step each, as a chain.
/// Its own KV cache is kept in step with the target's context: before each draft it rewinds to the longest prefix it
/// shares with the context (the accepted tokens stay cached, a rejected tail is dropped) and runs what is new in one
/// batched pass. Greedy drafting is deterministic, so verification's point-mass rule keeps sampling exact too.
/// </summary>
public sealed class DraftModelProposer : IDraftProposer, IDisposable
{
    private readonly LlamaModel _draft;
    private readonly RunState _state;
    private readonly int[] _cached;   // the tokens whose keys and values the draft's cache holds, in order
    private readonly int[] _one = new int[1];

    /// <summary>A proposer drafting with <paramref name="draft"/> over a context of <paramref name="contextSize"/> tokens.</summary>
    public DraftModelProposer(LlamaModel draft, int contextSize)
    {
        ArgumentNullException.ThrowIfNull(draft);
        _draft = draft;
        int context = Math.Min(contextSize, draft.Config.ContextLength);
        _state = draft.CreateState(context);
        _cached = new int[context];
    }

    /// <summary>The draft model's KV cache and buffers: what this proposer holds per sequence.</summary>
    public long StateBytes => (long)_state.ContextSize * _draft.Config.Layers * _draft.Config.KvDim * 2 * sizeof(short);

    /// <inheritdoc/>
    public void Propose(ReadOnlySpan<int> context, DraftTree tree)
    {
        // The draft runs every context token up to the last, then one step per drafted token but the last; all of it
        // must fit its context.
        int room = Math.Min(tree.Limit - tree.Count, _state.ContextSize - context.Length);
        if (room <= 0 || context.IsEmpty) return;
        int common = 0, limit = Math.Min(_state.Position, context.Length - 1);
        while (common < limit && _cached[common] == context[common]) common++;
        _state.Rewind(common);
        Run(context[common..]);
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
