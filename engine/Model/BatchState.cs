using Tessera.Backends;

namespace Tessera.Model;

/// <summary>
/// The state of a ragged batched forward pass over many sequences: activation buffers for the largest step (no
/// allocation per step), the shared paged KV cache, and the logits of each sequence's last row.
/// </summary>
public sealed class BatchState : IDisposable
{
    internal BatchState(LlamaConfig c, IBackend backend, int maxRows, int maxSequences, int kvBlocks, int blockSize)
    {
        if (maxRows <= 0) throw new ArgumentOutOfRangeException(nameof(maxRows), $"tokens per step {maxRows}: must be positive");
        if (maxSequences <= 0) throw new ArgumentOutOfRangeException(nameof(maxSequences), $"sequences {maxSequences}: must be positive");
        MaxRows = maxRows;
        MaxSequences = maxSequences;
        VocabSize = c.VocabSize;
        Buffers = new ForwardBuffers(c, backend, maxRows);
        Last = backend.Allocate(maxSequences * c.Dim);
        LogitsBuffer = backend.Allocate(maxSequences * c.VocabSize);
        Logits = new float[maxSequences * c.VocabSize];
        Cache = backend.CreatePagedKvCache(c, kvBlocks, blockSize);
    }

    /// <summary>Most rows (tokens of all sequences together) per step.</summary>
    public int MaxRows { get; }
    /// <summary>Most sequences per step.</summary>
    public int MaxSequences { get; }
    /// <summary>(sequences, vocab) logits of each sequence's last row after <see cref="LlamaModel.Forward(BatchState, RaggedBatch, bool)"/>.</summary>
    public float[] Logits { get; }
    /// <summary>Vocabulary size (the stride of <see cref="Logits"/>).</summary>
    public int VocabSize { get; }

    /// <summary>The logits of sequence <paramref name="s"/> of the last step.</summary>
    public Span<float> SequenceLogits(int s) => Logits.AsSpan(s * VocabSize, VocabSize);

    internal ForwardBuffers Buffers { get; } // the per-row activations
    internal Activation Last { get; }     // (sequences, dim) last row of each sequence
    internal Activation LogitsBuffer { get; } // (sequences, vocab)
    internal KvCache Cache { get; }

    /// <summary>Frees buffers and cache.</summary>
    public void Dispose()
    {
        foreach (var a in new[] { Last, LogitsBuffer }) a.Dispose();
        Buffers.Dispose();
        Cache.Dispose();
    }
}
