using Tessera.Backends;

namespace Tessera.Model;

/// <summary>
/// The state of a forward pass over many sequences: activation buffers for the largest step (no allocation per
/// step), the shared paged KV cache, and the logits of the rows each sequence asked for.
/// </summary>
public sealed class BatchState : IDisposable
{
    private readonly IBackend _backend;
    private readonly LlamaConfig _config;

    internal BatchState(LlamaConfig c, IBackend backend, int maxRows, int maxSequences, int kvBlocks, int blockSize, int contextPerSequence = 0)
    {
        if (maxRows <= 0) throw new ArgumentOutOfRangeException(nameof(maxRows), $"tokens per step {maxRows}: must be positive");
        if (maxSequences <= 0) throw new ArgumentOutOfRangeException(nameof(maxSequences), $"sequences {maxSequences}: must be positive");
        _backend = backend;
        _config = c;
        MaxRows = maxRows;
        MaxSequences = maxSequences;
        VocabSize = c.VocabSize;
        Buffers = new ForwardBuffers(c, backend, maxRows);
        Cache = backend.CreatePagedKvCache(c, kvBlocks, blockSize);
        BlockSize = blockSize;
        KvBlocks = kvBlocks;
        GrowLogits(maxSequences);
        Pruning = new Pruning.PrefillPruning?[maxSequences];
        // As llama.cpp: the context per sequence is the cache over the sequences unless the caller knows it.
        ContextPerSequence = contextPerSequence > 0 ? contextPerSequence : (int)Math.Min(int.MaxValue, (long)kvBlocks * blockSize / maxSequences);
        LongRope = c.UsesLongRopeFactors(ContextPerSequence);
    }

    /// <summary>The context a sequence may reach: it picks a LongRoPE model's long or short factors.</summary>
    public int ContextPerSequence { get; }

    /// <summary>Whether this state's steps rotate with LongRoPE's long factors (<see cref="LlamaConfig.UsesLongRopeFactors"/>).</summary>
    public bool LongRope { get; }

    /// <summary>Most rows (tokens of all sequences together) per step.</summary>
    public int MaxRows { get; }
    /// <summary>Most sequences per step.</summary>
    public int MaxSequences { get; }
    /// <summary>Positions per block of the paged cache.</summary>
    public int BlockSize { get; }
    /// <summary>Blocks in the paged cache.</summary>
    public int KvBlocks { get; }
    /// <summary>(logit rows, vocab) logits of the rows the last step asked for, in row order.</summary>
    public float[] Logits { get; private set; } = [];
    /// <summary>Vocabulary size (the stride of <see cref="Logits"/>).</summary>
    public int VocabSize { get; }

    /// <summary>The last logits row of sequence <paramref name="s"/> of the last step (its next-token logits).</summary>
    public Span<float> SequenceLogits(int s)
    {
        var b = LastBatch ?? throw new InvalidOperationException("no step has run");
        return RowLogits(b.LogitStart[s] + b.LogitCount[s] - 1);
    }

    /// <summary>Logit row <paramref name="i"/> of the last step (see <see cref="RaggedBatch.LogitRow"/>).</summary>
    public Span<float> RowLogits(int i) => Logits.AsSpan(i * VocabSize, VocabSize);

    /// <summary>When set and some sequence is requested, every step's attention adds what each cached position
    /// receives to it (KV budgets that rank positions); null by default, and then attention computes nothing extra.</summary>
    public AttentionScores? Scores { get; set; }

    /// <summary>Prompt pruning of each sequence of the next step (by its index in the batch; set by
    /// <see cref="RunState.UsePrefillPruning"/> for a single sequence, by the scheduler per step), or null: an armed
    /// one prunes its prompt step (then the step's only sequence), one with holes hides its layers' missing rows.</summary>
    internal Pruning.PrefillPruning?[] Pruning { get; }

    internal ForwardBuffers Buffers { get; } // the per-row activations
    internal Activation Last { get; private set; } = null!;         // (logit rows, dim) the rows logits are computed for
    internal Activation LogitsBuffer { get; private set; } = null!; // (logit rows, vocab)
    internal KvCache Cache { get; }
    internal RaggedBatch? LastBatch { get; set; }
    internal int LogitCapacity { get; private set; }

    /// <summary>Makes room for <paramref name="rows"/> logit rows. Grows only (a verification or perplexity step asks
    /// for every row once; later steps reuse the room), so steady decoding never allocates here.</summary>
    internal void GrowLogits(int rows)
    {
        if (rows <= LogitCapacity) return;
        Last?.Dispose();
        LogitsBuffer?.Dispose();
        Last = _backend.Allocate(rows * _config.Dim);
        LogitsBuffer = _backend.Allocate(rows * _config.VocabSize);
        Logits = new float[rows * _config.VocabSize];
        LogitCapacity = rows;
    }

    /// <summary>Frees buffers and cache.</summary>
    public void Dispose()
    {
        Last.Dispose();
        LogitsBuffer.Dispose();
        Buffers.Dispose();
        Cache.Dispose();
    }
}
