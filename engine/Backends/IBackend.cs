using Tessera.Model;

namespace Tessera.Backends;

/// <summary>A float32 activation buffer owned by a backend (host memory on the CPU, device memory on a GPU).</summary>
public abstract class Activation : IDisposable
{
    /// <summary>Number of float32 elements.</summary>
    public abstract int Length { get; }

    /// <summary>Frees the buffer.</summary>
    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>A weight prepared for a backend (on the CPU the file's mapping itself; on a GPU an uploaded copy).</summary>
public abstract class BackendWeight
{
    /// <summary>The weight in the file.</summary>
    public abstract WeightTensor Source { get; }
}

/// <summary>A small float32 vector parameter (norm weights), prepared for a backend.</summary>
public abstract class BackendVector
{
    /// <summary>Number of elements.</summary>
    public abstract int Length { get; }
}

/// <summary>Keys and values of every layer for the positions of one sequence, owned by a backend.</summary>
public abstract class KvCache : IDisposable
{
    /// <summary>How many positions fit.</summary>
    public abstract int Capacity { get; }

    /// <summary>Frees the cache.</summary>
    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>
/// The operations of a Llama forward pass. The model calls only these, so a backend (CPU, CUDA) implements each op
/// once under one name and the model never branches on the backend. Buffers hold <c>rows</c> rows of row-major data;
/// shape comments give (rows, width).
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>Short name, e.g. <c>cpu</c>.</summary>
    string Name { get; }

    /// <summary>Makes the backend usable on the calling thread, which must call this before its first op when it is not
    /// the thread that created the backend (a CUDA context is current per thread; the CPU needs nothing). Ops of one
    /// backend must still not run on two threads at once.</summary>
    void UseOnCurrentThread() { }

    /// <summary>A new zeroed activation buffer of <paramref name="length"/> floats.</summary>
    Activation Allocate(int length);

    /// <summary>Makes a weight matrix usable by this backend.</summary>
    BackendWeight Prepare(WeightTensor weight);

    /// <summary>Makes a float vector (norm weights) usable by this backend.</summary>
    BackendVector Prepare(float[] vector);

    /// <summary>A paged cache shared by many sequences: per layer a K pool and a V pool of
    /// <paramref name="blocks"/> x <paramref name="blockSize"/> x kvDim F16 (the layout of <see cref="RaggedBatch"/>).</summary>
    KvCache CreatePagedKvCache(LlamaConfig config, int blocks, int blockSize);

    /// <summary>output (n, dim) = rows <paramref name="tokens"/> of the embedding table, as float32.</summary>
    void Embed(BackendWeight table, ReadOnlySpan<int> tokens, Activation output);

    /// <summary>y (rows, dim) = x / rms(x) * weight, row by row.</summary>
    void RmsNorm(Activation x, BackendVector weight, Activation y, int rows, float eps);

    /// <summary>y (rows, w.Rows) = x (rows, w.Cols) · wᵀ, in the weight's type (activations converted as llama.cpp does).</summary>
    void MatMul(BackendWeight w, Activation x, Activation y, int rows);

    /// <summary>y0 = x · w0ᵀ, y1 = x · w1ᵀ and, when <paramref name="w2"/> is given, y2 = x · w2ᵀ: the products that share
    /// an input (QKV, gate/up), which a backend may run as one (convert x once, one dispatch). The results must equal
    /// separate <see cref="MatMul"/> calls; this default makes them.</summary>
    void MatMulShared(Activation x, int rows, BackendWeight w0, Activation y0, BackendWeight w1, Activation y1,
        BackendWeight? w2 = null, Activation? y2 = null)
    {
        MatMul(w0, x, y0, rows);
        MatMul(w1, x, y1, rows);
        if (w2 != null) MatMul(w2, x, y2 ?? throw new ArgumentNullException(nameof(y2)), rows);
    }

    /// <summary>Rotates x (batch.Rows, heads * headDim) in place; row i is at position <c>batch.Positions[i]</c>, its
    /// angles as <paramref name="frequencies"/> says.</summary>
    void Rope(Activation x, RaggedBatch batch, int heads, int headDim, RopeFrequencies frequencies, RopeLayout layout);

    /// <summary>gate (rows, width) = silu(gate) * up.</summary>
    void SwiGlu(Activation gate, Activation up, int count);

    /// <summary>gate (rows, width) = gelu_tanh(gate) * up (Gemma's GeGLU): as llama.cpp's CPU computes it, the GELU of
    /// gate rounded to F16, rounded to F16 again.</summary>
    void GeGlu(Activation gate, Activation up, int count);

    /// <summary>x = cap · tanh(x / cap) over the first <paramref name="count"/> elements (Gemma 2's final logits);
    /// <paramref name="cap"/> must be positive.</summary>
    void SoftCap(Activation x, float cap, int count);

    /// <summary>x *= factor over the first <paramref name="count"/> elements (Gemma's embeddings, by √dim).</summary>
    void Scale(Activation x, float factor, int count);

    /// <summary>acc += x over the first <paramref name="count"/> elements.</summary>
    void Add(Activation acc, Activation x, int count);

    /// <summary>x (rows, bias.Length) += bias in every row (Qwen2's Q/K/V biases).</summary>
    void AddBias(Activation x, BackendVector bias, int rows);

    /// <summary>Writes k and v (batch.Rows, kvDim) of every sequence of <paramref name="batch"/> into the paged
    /// <paramref name="cache"/> at each row's cache position (<see cref="RaggedBatch.CachePositions"/>) through its
    /// sequence's block table.</summary>
    void StoreKv(KvCache cache, int layer, Activation k, Activation v, RaggedBatch batch);

    /// <summary>Grouped-query attention for every sequence of <paramref name="batch"/>: each row attends to its
    /// sequence's cached positions before the step and to the step's rows it sees (<see cref="RaggedBatch.Sees"/>:
    /// those before it in a chain, its ancestors in a tree), read through that sequence's block table. The layer's
    /// <paramref name="variant"/> sets the score scale, a soft cap and a sliding window (default: plain attention).</summary>
    void Attention(Activation q, KvCache cache, int layer, RaggedBatch batch, Activation output, AttentionVariant variant = default);

    /// <summary>Whether <see cref="Attention(Activation, KvCache, int, RaggedBatch, Activation, AttentionScores, AttentionVariant)"/>
    /// is implemented (KV budgets and prompt pruning that rank positions by attention need it).</summary>
    bool ComputesAttentionScores => false;

    /// <summary><see cref="Attention(Activation, KvCache, int, RaggedBatch, Activation, AttentionVariant)"/> that also adds, for the rows
    /// <paramref name="scores"/> asks for, what each cached position receives, summed over the query heads (see
    /// <see cref="AttentionScores"/>). Same outputs, bit for bit, as without scores.</summary>
    void Attention(Activation q, KvCache cache, int layer, RaggedBatch batch, Activation output, AttentionScores scores,
        AttentionVariant variant = default) =>
        throw new NotSupportedException($"the {Name} backend does not compute attention scores (needed by KV budgets that rank positions and by prompt pruning); use --backend cpu");

    /// <summary>Called first in every forward step with its layout, before the embedding (CUDA uploads the layout
    /// once there, outside any graph capture). The ops still receive the batch.</summary>
    void BeginStep(RaggedBatch batch) { }

    /// <summary>Copies the keys and values of every layer from pool slot <paramref name="from"/>[i] to
    /// <paramref name="to"/>[i] (slot = block × blockSize + offset), one pair after the other, so a later pair may
    /// read what an earlier one wrote: compaction of an accepted draft path, copy-on-write of a forked block.</summary>
    void CopyKv(KvCache cache, ReadOnlySpan<int> from, ReadOnlySpan<int> to);

    /// <summary>dst[dstOffset ..] = src[srcOffset ..] for <paramref name="count"/> elements.</summary>
    void Copy(Activation src, int srcOffset, Activation dst, int dstOffset, int count);

    /// <summary>Copies <paramref name="destination"/>.Length floats from x, starting at <paramref name="offset"/>.</summary>
    void Read(Activation x, int offset, Span<float> destination);
}
