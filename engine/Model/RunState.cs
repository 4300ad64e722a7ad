using Tessera.Backends;

namespace Tessera.Model;

/// <summary>
/// The mutable state of one sequence: activation buffers sized once for the largest batch (no allocation per
/// token), the KV cache, and the position reached.
/// </summary>
public sealed class RunState : IDisposable
{
    private readonly IBackend _backend;
    private Activation? _allLogits;

    internal RunState(LlamaConfig c, IBackend backend, int contextSize, int maxBatch)
    {
        if (contextSize <= 0) throw new ArgumentOutOfRangeException(nameof(contextSize), "context size must be positive");
        if (maxBatch <= 0) throw new ArgumentOutOfRangeException(nameof(maxBatch), "batch size must be positive");
        _backend = backend;
        ContextSize = contextSize;
        MaxBatch = maxBatch;
        Buffers = new ForwardBuffers(c, backend, maxBatch);
        Last = backend.Allocate(c.Dim);
        LogitsBuffer = backend.Allocate(c.VocabSize);
        Logits = new float[c.VocabSize];
        Cache = backend.CreateKvCache(c, contextSize);
        VocabSize = c.VocabSize;
    }

    /// <summary>Positions the cache holds.</summary>
    public int ContextSize { get; }
    /// <summary>Most tokens per backend call; longer inputs run in chunks.</summary>
    public int MaxBatch { get; }
    /// <summary>Tokens already in the cache (the position of the next token).</summary>
    public int Position { get; internal set; }
    /// <summary>Logits of the last token run, on the host.</summary>
    public float[] Logits { get; }

    private int VocabSize { get; }
    internal ForwardBuffers Buffers { get; } // the per-row activations
    internal Activation Last { get; }     // (1, dim) last row for the logits
    internal Activation LogitsBuffer { get; } // (1, vocab)
    internal KvCache Cache { get; }
    /// <summary>True while the logits are sampled where they are computed (on the GPU, <see cref="Sampling.DeviceSampling"/>):
    /// the forward pass then leaves them in <see cref="LogitsBuffer"/> and <see cref="Logits"/> is not updated.</summary>
    internal bool LogitsStayOnDevice { get; set; }

    /// <summary>(batch, vocab) buffer for all-position logits, made on first use (perplexity, tests).</summary>
    internal Activation AllLogitsBuffer() => _allLogits ??= _backend.Allocate(MaxBatch * VocabSize);

    /// <summary>Forgets everything after <paramref name="position"/> (the cache keeps its memory).</summary>
    public void Rewind(int position)
    {
        if (position < 0 || position > Position) throw new ArgumentOutOfRangeException(nameof(position));
        Position = position;
    }

    /// <summary>Frees buffers and cache.</summary>
    public void Dispose()
    {
        foreach (var a in new[] { Last, LogitsBuffer, _allLogits }) a?.Dispose();
        Buffers.Dispose();
        Cache.Dispose();
    }
}
