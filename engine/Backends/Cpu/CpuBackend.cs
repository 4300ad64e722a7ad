using System.Numerics;
using System.Numerics.Tensors;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Backends.Cpu;

/// <summary>
/// The CPU backend: the default where there is no GPU and the reference every other backend is checked against.
/// Its numerics follow llama.cpp's CPU backend (activations converted to the weight's dot-product type, F16 KV cache,
/// F16 rounding of queries and attention probabilities) so that its logits match llama.cpp's closely.
/// </summary>
public sealed class CpuBackend : IBackend
{
    private byte[] _matmulScratch = [];

    /// <summary>A CPU backend on all cores (or on the process-wide <see cref="QuantizedMatMul.MaxThreads"/> if set).</summary>
    public CpuBackend() { }

    /// <summary>A CPU backend whose matrix products use at most <paramref name="threads"/> threads (0 = all cores).
    /// The setting is process-wide (<see cref="QuantizedMatMul.MaxThreads"/>); attention still uses the default scheduler.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is negative.</exception>
    public CpuBackend(int threads) => QuantizedMatMul.MaxThreads = threads;

    /// <inheritdoc/>
    public string Name => "cpu";

    /// <inheritdoc/>
    public Activation Allocate(int length) => new CpuActivation(length);

    /// <inheritdoc/>
    public BackendWeight Prepare(WeightTensor weight) => new CpuWeight(weight);

    /// <inheritdoc/>
    public BackendVector Prepare(float[] vector) => new CpuVector(vector);

    /// <inheritdoc/>
    public KvCache CreatePagedKvCache(LlamaConfig config, int blocks, int blockSize)
    {
        if (blocks <= 0) throw new ArgumentOutOfRangeException(nameof(blocks), $"KV blocks {blocks}: must be positive");
        if (blockSize <= 0 || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), $"KV block size {blockSize}: must be a power of two");
        if ((long)blocks * blockSize * config.KvDim > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(blocks), $"KV blocks {blocks}: a layer's pool would exceed {Array.MaxLength} values");
        return new CpuKvCache(config, blocks * blockSize, blockSize);
    }

    private static float[] D(Activation a) => ((CpuActivation)a).Data;

    /// <inheritdoc/>
    public void Embed(BackendWeight table, ReadOnlySpan<int> tokens, Activation output)
    {
        var w = table.Source;
        var o = D(output);
        for (int i = 0; i < tokens.Length; i++)
        {
            int t = tokens[i];
            if ((uint)t >= (uint)w.Rows) throw new ArgumentOutOfRangeException(nameof(tokens), $"token id {t} is outside the vocabulary (0..{w.Rows - 1})");
            Dequantizer.DequantizeRow(w.Type, w.Row(t), o.AsSpan(i * w.Cols, w.Cols));
        }
    }

    /// <inheritdoc/>
    public void RmsNorm(Activation x, BackendVector weight, Activation y, int rows, float eps) =>
        CpuOps.RmsNorm(D(x), ((CpuVector)weight).Data, D(y), rows, eps);

    /// <inheritdoc/>
    public unsafe void MatMul(BackendWeight w, Activation x, Activation y, int rows)
    {
        var t = w.Source;
        int need = QuantizedMatMul.ScratchBytes(t.Type, t.Cols, rows);
        if (_matmulScratch.Length < need) _matmulScratch = new byte[need];
        QuantizedMatMul.Multiply(t.Type, t.Data, t.ByteSize, t.Rows, t.Cols,
            D(x).AsSpan(0, rows * t.Cols), rows, D(y).AsSpan(0, rows * t.Rows), _matmulScratch);
    }

    /// <inheritdoc/>
    public unsafe void MatMulShared(Activation x, int rows, BackendWeight w0, Activation y0, BackendWeight w1, Activation y1,
        BackendWeight? w2 = null, Activation? y2 = null)
    {
        WeightTensor a = w0.Source, b = w1.Source;
        WeightTensor? c = w2?.Source;
        if (w2 != null && y2 == null) throw new ArgumentNullException(nameof(y2));
        // One conversion of x serves all only when every weight takes the same activation type and width.
        bool same = b.Type == a.Type && b.Cols == a.Cols && (c == null || (c.Type == a.Type && c.Cols == a.Cols));
        if (!same)
        {
            MatMul(w0, x, y0, rows);
            MatMul(w1, x, y1, rows);
            if (w2 != null) MatMul(w2, x, y2!, rows);
            return;
        }
        var dx = D(x);
        if (dx.Length < rows * a.Cols) throw new ArgumentException($"x holds {dx.Length} floats, need {rows * a.Cols}", nameof(x));
        Check(y0, rows * a.Rows, nameof(y0));
        Check(y1, rows * b.Rows, nameof(y1));
        if (c != null) Check(y2!, rows * c.Rows, nameof(y2));
        int need = QuantizedMatMul.ScratchBytes(a.Type, a.Cols, rows);
        if (_matmulScratch.Length < need) _matmulScratch = new byte[need];
        fixed (float* px = dx)
        fixed (float* p0 = D(y0))
        fixed (float* p1 = D(y1))
        fixed (float* p2 = y2 == null ? null : D(y2))
        fixed (byte* ps = _matmulScratch)
            QuantizedMatMul.MultiplyFused(a.Type, a.Cols, px, rows, ps,
                a.Data, a.Rows, p0, b.Data, b.Rows, p1, c == null ? null : c.Data, c?.Rows ?? 0, p2);
    }

    private static void Check(Activation y, int need, string name)
    {
        if (y.Length < need) throw new ArgumentException($"output holds {y.Length} floats, need {need}", name);
    }

    /// <inheritdoc/>
    public void Rope(Activation x, RaggedBatch batch, int heads, int headDim, RopeFrequencies frequencies, RopeLayout layout)
    {
        frequencies.Check(headDim, nameof(Rope));
        CpuOps.Rope(D(x), batch.Positions.AsSpan(0, batch.Rows), heads, headDim, frequencies.Theta, layout,
            frequencies.FreqScale, (frequencies.Factors as CpuVector)?.Data, frequencies.AttnFactor);
    }

    /// <inheritdoc/>
    public void SwiGlu(Activation gate, Activation up, int count) => CpuOps.SwiGlu(D(gate), D(up), count);

    /// <inheritdoc/>
    public void GeGlu(Activation gate, Activation up, int count) => CpuOps.GeGlu(D(gate), D(up), count);

    /// <inheritdoc/>
    public void SoftCap(Activation x, float cap, int count)
    {
        if (!(cap > 0) || !float.IsFinite(cap)) throw new ArgumentOutOfRangeException(nameof(cap), cap, "the soft cap must be a positive number");
        var d = D(x).AsSpan(0, count);
        TensorPrimitives.Multiply(d, 1.0f / cap, d);
        TensorPrimitives.Tanh(d, d);
        TensorPrimitives.Multiply(d, cap, d);
    }

    /// <inheritdoc/>
    public void Scale(Activation x, float factor, int count) => TensorPrimitives.Multiply(D(x).AsSpan(0, count), factor, D(x).AsSpan(0, count));

    /// <inheritdoc/>
    public void Add(Activation acc, Activation x, int count) =>
        TensorPrimitives.Add(D(acc).AsSpan(0, count), D(x).AsSpan(0, count), D(acc).AsSpan(0, count));

    /// <inheritdoc/>
    public void AddBias(Activation x, BackendVector bias, int rows)
    {
        float[] b = ((CpuVector)bias).Data, d = D(x);
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(d.AsSpan(r * b.Length, b.Length), b, d.AsSpan(r * b.Length, b.Length));
    }

    /// <inheritdoc/>
    public void StoreKv(KvCache cache, int layer, Activation k, Activation v, RaggedBatch batch)
    {
        var c = Paged(cache, batch);
        int kvDim = c.Config.KvDim, shift = BitOperations.Log2((uint)c.BlockSize), mask = c.BlockSize - 1;
        float[] dk = D(k), dv = D(v);
        for (int r = 0; r < batch.Rows; r++)
        {
            int s = batch.RowSequence[r], pos = batch.CachePositions[r];
            var table = batch.Table(s);
            long slot = ((long)table[pos >> shift] << shift | (uint)(pos & mask)) * kvDim;
            TensorPrimitives.ConvertToHalf(dk.AsSpan(r * kvDim, kvDim), c.K[layer].AsSpan((int)slot, kvDim));
            TensorPrimitives.ConvertToHalf(dv.AsSpan(r * kvDim, kvDim), c.V[layer].AsSpan((int)slot, kvDim));
        }
    }

    /// <inheritdoc/>
    public void Attention(Activation q, KvCache cache, int layer, RaggedBatch batch, Activation output, AttentionVariant variant = default)
    {
        var c = Paged(cache, batch);
        CpuAttention.Compute(D(q), c.K[layer], c.V[layer], c.Config, batch, D(output), variant: variant);
    }

    /// <inheritdoc/>
    public bool ComputesAttentionScores => true;

    /// <inheritdoc/>
    public void Attention(Activation q, KvCache cache, int layer, RaggedBatch batch, Activation output, AttentionScores scores,
        AttentionVariant variant = default)
    {
        var c = Paged(cache, batch);
        CpuAttention.Compute(D(q), c.K[layer], c.V[layer], c.Config, batch, D(output), scores, layer, variant);
    }

    private static CpuKvCache Paged(KvCache cache, RaggedBatch batch)
    {
        var c = (CpuKvCache)cache;
        if (c.BlockSize != batch.BlockSize)
            throw new ArgumentException($"the batch's block size {batch.BlockSize} differs from the cache's {c.BlockSize} ", nameof(batch));
        int blocks = c.Cap / c.BlockSize;
        for (int s = 0; s < batch.Sequences; s++)
            foreach (int b in batch.Table(s))
                if ((uint)b >= (uint)blocks)
                    throw new ArgumentException($"the block table of sequence {s} names block {b}; the cache has {blocks}", nameof(batch));
        return c;
    }

    /// <inheritdoc/>
    public void CopyKv(KvCache cache, ReadOnlySpan<int> from, ReadOnlySpan<int> to)
    {
        var c = (CpuKvCache)cache;
        if (from.Length != to.Length) throw new ArgumentException($"{from.Length} source slots but {to.Length} destinations", nameof(to));
        int kvDim = c.Config.KvDim;
        for (int i = 0; i < from.Length; i++)
        {
            if ((uint)from[i] >= (uint)c.Cap || (uint)to[i] >= (uint)c.Cap)
                throw new ArgumentOutOfRangeException(nameof(from), $"KV copy {from[i]} -> {to[i]}: the cache has {c.Cap} slots");
            for (int l = 0; l < c.K.Length; l++)
            {
                c.K[l].AsSpan(from[i] * kvDim, kvDim).CopyTo(c.K[l].AsSpan(to[i] * kvDim, kvDim));
                c.V[l].AsSpan(from[i] * kvDim, kvDim).CopyTo(c.V[l].AsSpan(to[i] * kvDim, kvDim));
            }
        }
    }

    /// <inheritdoc/>
    public void Copy(Activation src, int srcOffset, Activation dst, int dstOffset, int count) =>
        D(src).AsSpan(srcOffset, count).CopyTo(D(dst).AsSpan(dstOffset, count));

    /// <inheritdoc/>
    public void Read(Activation x, int offset, Span<float> destination) =>
        D(x).AsSpan(offset, destination.Length).CopyTo(destination);

    /// <inheritdoc/>
    public void Dispose() { }
}
