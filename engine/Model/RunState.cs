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
        X = backend.Allocate(maxBatch * c.Dim);
        Xb = backend.Allocate(maxBatch * Math.Max(c.Dim, c.QDim));
        Q = backend.Allocate(maxBatch * c.QDim);
        K = backend.Allocate(maxBatch * c.KvDim);
        V = backend.Allocate(maxBatch * c.KvDim);
        Att = backend.Allocate(maxBatch * c.QDim);
        Hb = backend.Allocate(maxBatch * c.FfnDim);
        Hb2 = backend.Allocate(maxBatch * c.FfnDim);
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
    internal Activation X { get; }        // (batch, dim) residual stream
    internal Activation Xb { get; }       // (batch, max(dim, q_dim)) normed input / projection output
    internal Activation Q { get; }        // (batch, heads * head_dim)
    internal Activation K { get; }        // (batch, kv_heads * head_dim)
    internal Activation V { get; }        // (batch, kv_heads * head_dim)
    internal Activation Att { get; }      // (batch, heads * head_dim) attention output
    internal Activation Hb { get; }       // (batch, ffn) gate, then silu(gate) * up
    internal Activation Hb2 { get; }      // (batch, ffn) up
    internal Activation Last { get; }     // (1, dim) last row for the logits
    internal Activation LogitsBuffer { get; } // (1, vocab)
    internal KvCache Cache { get; }

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
        foreach (var a in new[] { X, Xb, Q, K, V, Att, Hb, Hb2, Last, LogitsBuffer, _allLogits }) a?.Dispose();
        Cache.Dispose();
    }
}
