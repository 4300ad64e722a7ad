using Tessera.Interop;
using Tessera.Interop.Kernels;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Backends.Cuda;

/// <summary>
/// The CUDA backend: activations, weights and the KV cache live in device memory; each op is one launcher call on
/// one stream, so ops run in order without host synchronization until <see cref="Read"/>. Weights keep their file
/// format on the device for F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K; other types are dequantized to F32 on the host
/// once, when prepared (correct, not compact).
/// </summary>
public sealed unsafe class CudaBackend : IBackend
{
    private readonly CudaContext _context;
    private readonly CudaStream _stream;
    private readonly KernelLibrary _kernels;
    private readonly Embed _embed;
    private readonly RmsNorm _rmsNorm;
    private readonly Gemv _gemv;
    private readonly Gemm _gemm;
    private readonly Rope _rope;
    private readonly SwiGlu _swiGlu;
    private readonly GeGlu _geGlu;
    private readonly SoftCap _softCap;
    private readonly Scale _scale;
    private readonly Add _add;
    private readonly AddBias _addBias;
    private readonly KvAppend _kvAppend;
    private readonly KvCopy _kvCopy;
    private DeviceBuffer<int>? _copyPairs;  // CopyKv: from slots, then to slots
    private readonly FlashAttention _flash;
    private readonly SampleTopK _sample;
    private readonly TopKPrune _topk;
    private DeviceBuffer<int>? _topkOut;
    private readonly DeviceBuffer<int> _sampled;
    private PinnedBuffer? _requestStaging;     // SampleRows: the packed requests, then their device copy and the tokens
    private DeviceBuffer<int>? _requests;
    private DeviceBuffer<int>? _sampledRows;
    private CudaDecodeGraph? _step;   // the decode graph whose step is running (see CudaDecodeGraph)
    private CudaAttentionScores? _scores;
    private bool _capturing;
    private DeviceBuffer<int>? _tokens;
    private float[] _hostRows = [];
    private CudaRaggedBatch? _ragged;  // the device layout of the last ragged batch (paged ops)

    private CudaBackend(CudaContext context)
    {
        _context = context;
        _stream = new CudaStream(context);
        _kernels = new KernelLibrary(context, KernelImages.Load);
        // Loading every module up front makes a missing or broken PTX image fail here, not mid-forward.
        _embed = new Embed(_kernels);
        _rmsNorm = new RmsNorm(_kernels);
        _gemv = new Gemv(_kernels);
        _gemm = new Gemm(_kernels);
        _rope = new Rope(_kernels);
        _swiGlu = new SwiGlu(_kernels);
        _geGlu = new GeGlu(_kernels);
        _softCap = new SoftCap(_kernels);
        _scale = new Scale(_kernels);
        _add = new Add(_kernels);
        _addBias = new AddBias(_kernels);
        _kvAppend = new KvAppend(_kernels);
        _kvCopy = new KvCopy(_kernels);
        _flash = new FlashAttention(_kernels);
        _sample = new SampleTopK(_kernels);
        _topk = new TopKPrune(_kernels);
        _sampled = new DeviceBuffer<int>(context, 1);
    }

    /// <summary>Opens device <paramref name="ordinal"/> with the embedded kernels, or returns null with the reason
    /// (no driver, no device, kernels not built, device too old).</summary>
    public static CudaBackend? TryCreate(out string reason, int ordinal = 0)
    {
        // The device first: on a machine without a GPU that is the reason worth reporting.
        var context = CudaContext.TryCreate(out reason, ordinal);
        if (context is null) return null;
        if (!KernelImages.Built)
        {
            context.Dispose();
            reason = KernelImages.NotBuiltReason;
            return null;
        }
        try
        {
            return new CudaBackend(context);
        }
        catch (Exception e) when (e is CudaException or NotSupportedException or InvalidOperationException)
        {
            context.Dispose();
            reason = e.Message;
            return null;
        }
    }

    /// <inheritdoc/>
    public string Name => "cuda";

    /// <summary>The stream every op runs on.</summary>
    internal CudaStream Stream => _stream;

    /// <summary>The device in use.</summary>
    public CudaContext Context => _context;

    /// <summary>Waits for every queued op (before freeing buffers they may use).</summary>
    internal void Synchronize() => _stream.Synchronize();

    private static DeviceSpan<float> D(Activation a) => ((CudaActivation)a).Buffer.Span;

    /// <inheritdoc/>
    public Activation Allocate(int length)
    {
        var b = new DeviceBuffer<float>(_context, length);
        b.Memory.Fill(0, _stream);
        return new CudaActivation(b);
    }

    /// <inheritdoc/>
    public BackendWeight Prepare(WeightTensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        WeightFormat? direct = weight.Type switch
        {
            GgmlType.F32 => WeightFormat.F32,
            GgmlType.F16 => WeightFormat.F16,
            GgmlType.BF16 => WeightFormat.BF16,
            GgmlType.Q8_0 => WeightFormat.Q8_0,
            GgmlType.Q4_0 => WeightFormat.Q4_0,
            GgmlType.Q4_K => WeightFormat.Q4_K,
            GgmlType.Q6_K => WeightFormat.Q6_K,
            _ => null,
        };
        if (direct is { } f)
        {
            var mem = new DeviceMemory(_context, weight.ByteSize);
            Upload(mem, weight.Data, weight.ByteSize);
            return new CudaWeight(weight, f, mem);
        }
        float[] host = weight.ToFloat32();
        var m = new DeviceMemory(_context, (long)host.Length * sizeof(float));
        fixed (float* p = host) Upload(m, (byte*)p, (long)host.Length * sizeof(float));
        return new CudaWeight(weight, WeightFormat.F32, m);
    }

    // Spans are int-sized; weights can be larger. The copies are from pageable memory, so the driver has finished
    // reading the host bytes when the call returns.
    private void Upload(DeviceMemory dst, byte* src, long bytes)
    {
        const int Piece = 1 << 30;
        for (long off = 0; off < bytes; off += Piece)
            dst.Upload(new ReadOnlySpan<byte>(src + off, (int)Math.Min(Piece, bytes - off)), off, _stream);
    }

    /// <inheritdoc/>
    public BackendVector Prepare(float[] vector)
    {
        ArgumentNullException.ThrowIfNull(vector);
        var b = new DeviceBuffer<float>(_context, vector.Length);
        b.Upload(vector, _stream);
        return new CudaVector(b);
    }

    /// <inheritdoc/>
    public void UseOnCurrentThread() => _context.MakeCurrent();

    /// <inheritdoc/>
    public KvCache CreatePagedKvCache(LlamaConfig config, int blocks, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (blocks <= 0) throw new ArgumentOutOfRangeException(nameof(blocks), $"KV blocks {blocks}: must be positive");
        if (blockSize <= 0 || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), $"KV block size {blockSize}: must be a power of two");
        if ((long)blocks * blockSize * config.KvDim > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(blocks), $"KV blocks {blocks}: a layer's pool would exceed {int.MaxValue} values");
        // The ragged attention is the flash kernel only (no split-KV fallback for a paged cache): say so up front
        // rather than at the first step.
        if (config.HeadDim % 2 != 0 || config.HeadDim > FlashAttention.MaxHeadDim)
            throw new NotSupportedException($"paged KV cache on CUDA: head_dim {config.HeadDim} is not supported (even and at most {FlashAttention.MaxHeadDim}); serve this model on the CPU backend");
        return new CudaPagedKvCache(_context, _stream, config, blocks, blockSize);
    }

    /// <inheritdoc/>
    public void BeginStep(RaggedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (_capturing) throw new InvalidOperationException("decode graph: a step begins before any op is captured");
        // Once per step, eagerly: a graph step's kernels read the layout from the graph's own buffer, refilled here
        // before the replay (its positions change every step); other steps upload into the shared one.
        if (_step is { } g) g.Layout.Use(batch);
        else (_ragged ??= new CudaRaggedBatch(_context, _stream)).Use(batch);
    }

    /// <inheritdoc/>
    public void Rope(Activation x, RaggedBatch batch, int heads, int headDim, RopeFrequencies frequencies, RopeLayout layout)
    {
        frequencies.Check(headDim, nameof(Rope));
        var m = Ragged(batch, nameof(Rope));
        var factors = frequencies.Factors is { } f ? ((CudaVector)f).Buffer.Span : default;
        // The graph signature covers what the launch depends on: a layer with other factors or scales is another op.
        static ulong Bits(float v) => (uint)BitConverter.SingleToInt32Bits(v);
        ulong shape = (uint)headDim | (Bits(frequencies.Theta) << 16) | ((ulong)layout << 62);
        ulong angles = Bits(frequencies.FreqScale) | (Bits(frequencies.AttnFactor) << 32);
        if (Skip(Sig(3, D(x).Pointer, factors.Pointer, (uint)batch.Rows | ((ulong)heads << 32), (long)shape, (long)angles))) return;
        _rope.LaunchRows(_stream, D(x), batch.Rows, heads, headDim, m.Positions, frequencies.Theta, layout == RopeLayout.AdjacentPairs,
            factors, frequencies.FreqScale, frequencies.AttnFactor);
    }

    /// <inheritdoc/>
    public void StoreKv(KvCache cache, int layer, Activation k, Activation v, RaggedBatch batch)
    {
        var c = Paged(cache, layer, batch);
        var m = Ragged(batch, nameof(StoreKv));
        if (Skip(Sig(6, c.K[layer].Pointer, D(k).Pointer, D(v).Pointer, batch.Rows, layer))) return;
        _kvAppend.LaunchPaged(_stream, D(k), D(v), c.K[layer].Span, c.V[layer].Span, m.Slots, batch.Rows, c.Config.KvDim, c.Capacity);
    }

    /// <inheritdoc/>
    public void Attention(Activation q, KvCache cache, int layer, RaggedBatch batch, Activation output, AttentionVariant variant = default) =>
        Attention(q, Paged(cache, layer, batch), layer, batch, Ragged(batch, nameof(Attention)), output, variant);

    private void Attention(Activation q, CudaPagedKvCache c, int layer, RaggedBatch batch, CudaRaggedBatch m, Activation output,
        AttentionVariant variant)
    {
        var cfg = c.Config;
        if (Skip(Sig(7, c.K[layer].Pointer, D(q).Pointer, D(output).Pointer, batch.Rows, layer))) return;
        if (batch.HasTrees && batch.Rows > 0)
            for (int s = 0; s < batch.Sequences; s++)
                if (batch.IsTree[s] && batch.RowCount[s] > RaggedBatch.MaxTreeRows)
                    throw new ArgumentException($"sequence {s}: a tree of {batch.RowCount[s]} rows; the kernel masks at most {RaggedBatch.MaxTreeRows}", nameof(batch));
        _flash.LaunchPaged(_stream, D(q), c.K[layer].Span, c.V[layer].Span, m.TileSpan, m.Tiles, m.Tables, m.Masks, D(output),
            batch.Rows, cfg.Heads, cfg.KvHeads, cfg.HeadDim, batch.BlockSize, variant.ScaleFor(cfg.HeadDim), variant.SoftCap, variant.Window);
    }

    /// <inheritdoc/>
    public bool ComputesAttentionScores => true;

    /// <inheritdoc/>
    /// <remarks>The flash kernel's output is untouched; the sums are a pass of their own (kernels/attention_scores.cu)
    /// that stays on the device until <see cref="AttentionScores.Of"/> reads them. Not inside a decode graph.</remarks>
    public void Attention(Activation q, KvCache cache, int layer, RaggedBatch batch, Activation output, AttentionScores scores,
        AttentionVariant variant = default)
    {
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.Any && _step is not null) throw new InvalidOperationException("decode graph: attention scores are not captured; run this step without a graph");
        var c = Paged(cache, layer, batch);
        var m = Ragged(batch, nameof(Attention));
        Attention(q, c, layer, batch, m, output, variant);
        if (!scores.Any) return;
        (_scores ??= new CudaAttentionScores(_context, _stream, _kernels)).Add(scores, batch, layer, D(q), c.K[layer].Span, m, c.Config, variant);
    }

    // The batch's device layout: in a graph step the graph's own, filled by BeginStep; otherwise the shared one,
    // uploaded when it changed (an op called outside a model step, as the op suite does, uploads it here).
    private CudaRaggedBatch Ragged(RaggedBatch batch, string op)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (_step is { } g)
        {
            if (g.Layout.Rows != batch.Rows) throw new InvalidOperationException($"decode graph: {op} got {batch.Rows} rows, the step began with {g.Layout.Rows}");
            // The graph's layout is filled once per step; hidden rows change per layer, which a replay would miss.
            for (int s = 0; s < batch.Sequences; s++)
                if (batch.HiddenEnd[s] > batch.HiddenStart[s])
                    throw new InvalidOperationException("decode graph: a pruned prompt's sequence hides rows per layer; run its steps without a graph");
            return g.Layout;
        }
        var m = _ragged ??= new CudaRaggedBatch(_context, _stream);
        m.Use(batch);
        return m;
    }

    // The paged cache of a ragged op, checked against the batch: the same block size, and every block id of every
    // table inside the pools (the kernels index the pools with them unchecked).
    private static CudaPagedKvCache Paged(KvCache cache, int layer, RaggedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (cache is not CudaPagedKvCache c)
            throw new ArgumentException($"the ragged ops need a paged cache from this backend's CreatePagedKvCache, not a {cache?.GetType().Name ?? "null"}", nameof(cache));
        if ((uint)layer >= (uint)c.K.Length) throw new ArgumentOutOfRangeException(nameof(layer), $"layer {layer}: the cache has {c.K.Length} layers");
        if (c.BlockSize != batch.BlockSize)
            throw new ArgumentException($"the batch's block size {batch.BlockSize} differs from the cache's {c.BlockSize}", nameof(batch));
        for (int s = 0; s < batch.Sequences; s++)
            foreach (int b in batch.Table(s))
                if ((uint)b >= (uint)c.Blocks)
                    throw new ArgumentException($"the block table of sequence {s} names block {b}; the cache has {c.Blocks}", nameof(batch));
        return c;
    }

    /// <inheritdoc/>
    public void Embed(BackendWeight table, ReadOnlySpan<int> tokens, Activation output)
    {
        // The embedding runs eagerly even in a graph step (its token ids come from the host each step), before the
        // capture starts; the graph begins with the op after it.
        if (_capturing) throw new InvalidOperationException("decode graph: the embedding must be the first op of a step");
        var w = (CudaWeight)table;
        int rows = w.Source.Rows, dim = w.Source.Cols;
        foreach (int t in tokens)
            if ((uint)t >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(tokens), $"token id {t} is outside the vocabulary (0..{rows - 1})");
        if (!Interop.Kernels.Embed.Supports(w.Format))
        {
            // No device gather for this type (e.g. Q6_K tables): dequantize the few rows on the host.
            int n = tokens.Length * dim;
            if (_hostRows.Length < n) _hostRows = new float[n];
            for (int i = 0; i < tokens.Length; i++)
                Dequantizer.DequantizeRow(w.Source.Type, w.Source.Row(tokens[i]), _hostRows.AsSpan(i * dim, dim));
            ((CudaActivation)output).Buffer.Upload(_hostRows.AsSpan(0, n), _stream);
            _stream.Synchronize();  // _hostRows is reused by the next call
            return;
        }
        if (_tokens is null || _tokens.Length < tokens.Length)
        {
            _stream.Synchronize();
            _tokens?.Dispose();
            _tokens = new DeviceBuffer<int>(_context, Math.Max(tokens.Length, 512));
        }
        _tokens.Upload(tokens, _stream);
        _embed.Launch(_stream, w.Format, w.Memory.Span, rows, dim, _tokens.Span, tokens.Length, D(output));
    }

    /// <inheritdoc/>
    public void RmsNorm(Activation x, BackendVector weight, Activation y, int rows, float eps)
    {
        var wv = ((CudaVector)weight).Buffer;
        if (Skip(Sig(1, D(x).Pointer, wv.Pointer, D(y).Pointer, rows, BitConverter.SingleToInt32Bits(eps)))) return;
        _rmsNorm.Launch(_stream, D(x), wv.Span, D(y), rows, wv.Length, eps);
    }

    /// <inheritdoc/>
    public void MatMul(BackendWeight w, Activation x, Activation y, int rows)
    {
        var cw = (CudaWeight)w;
        if (Skip(Sig(2, cw.Memory.Pointer, D(x).Pointer, D(y).Pointer, rows))) return;
        // Several tokens: tensor cores, each weight tile read once per 64 tokens. One token (decode) or F32 weights:
        // one warp per weight row, reading the weights once at full bandwidth.
        if (rows > 1 && Gemm.Supports(cw.Format))
            _gemm.Launch(_stream, cw.Format, cw.Memory.Span, cw.Source.Rows, cw.Source.Cols, D(x), D(y), rows);
        else
            _gemv.Launch(_stream, cw.Format, cw.Memory.Span, cw.Source.Rows, cw.Source.Cols, D(x), D(y), rows);
    }

    /// <inheritdoc/>
    public void SwiGlu(Activation gate, Activation up, int count)
    {
        if (Skip(Sig(4, D(gate).Pointer, D(up).Pointer, 0, count))) return;
        _swiGlu.Launch(_stream, D(gate), D(up), count);
    }

    /// <inheritdoc/>
    public void GeGlu(Activation gate, Activation up, int count)
    {
        if (Skip(Sig(11, D(gate).Pointer, D(up).Pointer, 0, count))) return;
        _geGlu.Launch(_stream, D(gate), D(up), count);
    }

    /// <inheritdoc/>
    public void SoftCap(Activation x, float cap, int count)
    {
        if (Skip(Sig(12, D(x).Pointer, 0, 0, count, BitConverter.SingleToInt32Bits(cap)))) return;
        _softCap.Launch(_stream, D(x), cap, count);
    }

    /// <inheritdoc/>
    public void Scale(Activation x, float factor, int count)
    {
        if (Skip(Sig(13, D(x).Pointer, 0, 0, count, BitConverter.SingleToInt32Bits(factor)))) return;
        _scale.Launch(_stream, D(x), factor, count);
    }

    /// <inheritdoc/>
    public void Add(Activation acc, Activation x, int count)
    {
        if (Skip(Sig(5, D(acc).Pointer, D(x).Pointer, 0, count))) return;
        _add.Launch(_stream, D(acc), D(x), count);
    }

    /// <inheritdoc/>
    public void AddBias(Activation x, BackendVector bias, int rows)
    {
        var b = ((CudaVector)bias).Buffer;
        if (Skip(Sig(10, D(x).Pointer, b.Pointer, 0, rows))) return;
        _addBias.Launch(_stream, D(x), b.Span, rows, b.Length);
    }

    /// <inheritdoc/>
    public void CopyKv(KvCache cache, ReadOnlySpan<int> from, ReadOnlySpan<int> to)
    {
        if (cache is not CudaPagedKvCache c)
            throw new ArgumentException($"KV copies need a paged cache from this backend's CreatePagedKvCache, not a {cache?.GetType().Name ?? "null"}", nameof(cache));
        if (from.Length != to.Length) throw new ArgumentException($"{from.Length} source slots but {to.Length} destinations", nameof(to));
        if (_step is not null) throw new InvalidOperationException("decode graph: KV copies run between steps, not in one");
        int n = from.Length;
        if (n == 0) return;
        for (int i = 0; i < n; i++)
            if ((uint)from[i] >= (uint)c.Capacity || (uint)to[i] >= (uint)c.Capacity)
                throw new ArgumentOutOfRangeException(nameof(from), $"KV copy {from[i]} -> {to[i]}: the cache has {c.Capacity} slots");
        if (_copyPairs is null || _copyPairs.Length < 2 * n)
        {
            _stream.Synchronize();  // queued copies may still read the old pairs
            _copyPairs?.Dispose();
            _copyPairs = new DeviceBuffer<int>(_context, Math.Max(256, 2 * n));
        }
        Span<int> pairs = n <= 128 ? stackalloc int[2 * n] : new int[2 * n];
        from.CopyTo(pairs);
        to.CopyTo(pairs[n..]);
        _copyPairs.Upload(pairs, _stream);  // stream-ordered after the kernels that read the last pairs
        for (int l = 0; l < c.K.Length; l++)
            _kvCopy.Launch(_stream, c.K[l].Span, c.V[l].Span, _copyPairs.Slice(0, n), _copyPairs.Slice(n, n), n, c.Config.KvDim, c.Capacity);
    }

    /// <inheritdoc/>
    public void Copy(Activation src, int srcOffset, Activation dst, int dstOffset, int count)
    {
        if (Skip(Sig(8, D(src).Pointer + (ulong)srcOffset, D(dst).Pointer + (ulong)dstOffset, 0, count))) return;
        DeviceMemory.Copy(((CudaActivation)src).Buffer.Memory, (long)srcOffset * sizeof(float),
            ((CudaActivation)dst).Buffer.Memory, (long)dstOffset * sizeof(float), (long)count * sizeof(float), _stream);
    }

    /// <inheritdoc/>
    public void Read(Activation x, int offset, Span<float> destination)
    {
        if (_step is { } g)
        {
            // The end of a graph step: finish the capture (first time) or check the step matched it, then run it.
            ulong sig = Sig(9, D(x).Pointer, (ulong)offset, 0, destination.Length);
            if (g.Graph is null)
            {
                if (!_capturing) throw new InvalidOperationException("decode graph: the step has no op to capture");
                _capturing = false;
                g.Graph = _stream.EndCapture();
                g.ReadSignature = sig;
            }
            else if (g.Index != g.Signatures.Count || g.ReadSignature != sig)
                throw new InvalidOperationException($"decode graph: the step read its logits after {g.Index} ops, the captured step after {g.Signatures.Count}");
            g.Graph.Launch(_stream);
        }
        ((CudaActivation)x).Buffer.Download(destination, _stream, offset);
    }

    // ---- Decode graph (driven by CudaDecodeGraph) ----
    // A step is bracketed by BeginGraphStep/EndGraphStep. First (capture) step: the embedding runs eagerly, every
    // later op is recorded into a graph with its signature (op and buffers; positions come from the graph's layout), and
    // Read ends the capture and launches the graph. Later (replay) steps: the embedding runs eagerly, every other op
    // only checks that its signature matches the captured one (so a changed buffer or shape fails loudly instead of
    // replaying stale work), and Read launches the graph.

    /// <summary>Starts a step of <paramref name="graph"/>: the model's BeginStep then writes the step's layout
    /// (position, slot, tile; read by rope, kv_append and attention in the graph) into the graph's buffer before any
    /// capture.</summary>
    internal void BeginGraphStep(CudaDecodeGraph graph)
    {
        if (_step is not null) throw new InvalidOperationException("decode graph: a step is already running");
        graph.Index = 0;
        _step = graph;
    }

    /// <summary>Ends the step; a capture left open by an exception is closed and discarded.</summary>
    internal void EndGraphStep()
    {
        var g = _step;
        _step = null;
        if (!_capturing) return;
        _capturing = false;
        g?.Signatures.Clear();
        try { _stream.EndCapture().Dispose(); }
        catch (CudaException) { }  // an invalidated capture cannot be instantiated; nothing ran, nothing to free
    }

    // True when the op is to be skipped (replay); in a capture step, starts the capture at the first op after the
    // embedding and records the op's signature.
    private bool Skip(ulong signature)
    {
        var g = _step;
        if (g is null) return false;
        if (g.Graph is null)
        {
            if (!_capturing)
            {
                _stream.BeginCapture();
                _capturing = true;
            }
            g.Signatures.Add(signature);
            return false;
        }
        if (g.Index >= g.Signatures.Count || g.Signatures[g.Index] != signature)
            throw new InvalidOperationException($"decode graph: op {g.Index} of this step differs from the captured step (buffers or shapes changed)");
        g.Index++;
        return true;
    }

    // FNV-1a over the op code and its arguments.
    private static ulong Sig(int op, ulong a, ulong b, ulong c, long d, long e = 0)
    {
        ulong h = 14695981039346656037UL;
        foreach (ulong v in (ReadOnlySpan<ulong>)[(ulong)op, a, b, c, (ulong)d, (ulong)e]) h = (h ^ v) * 1099511628211UL;
        return h;
    }

    /// <summary>The token-pruning top-k on the device (<c>kernels/topk_prune.cu</c>): writes to
    /// <paramref name="selected"/> the indices of the <paramref name="k"/> largest of the first
    /// <paramref name="count"/> floats of <paramref name="scores"/>, ascending, ties to the lower index: the same set
    /// as the CPU op <see cref="Kv.TopK.Select"/>.</summary>
    public void TopK(Activation scores, int count, int k, Span<int> selected)
    {
        if (k == 0) return;
        if (_topkOut is null || _topkOut.Length < k)
        {
            _topkOut?.Dispose();
            _topkOut = new DeviceBuffer<int>(_context, Math.Max(k, 2 * (_topkOut?.Length ?? 0)));
        }
        _topk.Launch(_stream, D(scores), count, k, _topkOut.Span.Slice(0, k));
        _topkOut.Download(selected.Slice(0, k), _stream);
    }

    /// <summary>Samples a token from the first <paramref name="count"/> logits on the device, as the CPU
    /// <see cref="Sampling.Sampler"/> does without penalties for the same <paramref name="uniform"/> draw, and returns
    /// only its id (4 bytes cross to the host). Temperature 0 is greedy. Throws when more than
    /// <see cref="Interop.Kernels.SampleTopK.MaxCandidates"/> candidates would need sorting (check
    /// <see cref="Interop.Kernels.SampleTopK.Supports"/> first).</summary>
    public int SampleTopK(Activation logits, int count, int topK, float topP, float minP, float temperature, double uniform)
    {
        _sample.Launch(_stream, D(logits), count, topK, topP, minP, temperature, uniform, _sampled.Span);
        Span<int> id = stackalloc int[1];
        _sampled.Download(id, _stream);
        return id[0];
    }

    /// <summary>Draws one token for each of <paramref name="requests"/> from its row of <paramref name="logits"/>
    /// (<paramref name="logitRows"/> rows of <paramref name="count"/>) in one launch, as <see cref="SampleTopK(Activation, int, int, float, float, float, double)"/>
    /// draws one: a batch of sequences samples with one upload of the requests and one download of the token ids.</summary>
    public void SampleRows(Activation logits, int count, int logitRows, ReadOnlySpan<SampleRequest> requests, Span<int> tokens)
    {
        int n = requests.Length;
        if (n == 0) return;
        if (tokens.Length < n) throw new ArgumentException($"{n} requests need {n} token slots, got {tokens.Length}", nameof(tokens));
        int ints = n * Interop.Kernels.SampleTopK.RequestInts;
        if (_requestStaging is null || _requestStaging.Bytes < ints * sizeof(int))
        {
            // Every call ends with a synchronous download, so nothing queued still reads the old buffers.
            _requestStaging?.Dispose();
            _requests?.Dispose();
            _sampledRows?.Dispose();
            int capacity = Math.Max(64, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)n));
            _requestStaging = new PinnedBuffer(_context, (long)capacity * Interop.Kernels.SampleTopK.RequestInts * sizeof(int));
            _requests = new DeviceBuffer<int>(_context, capacity * Interop.Kernels.SampleTopK.RequestInts);
            _sampledRows = new DeviceBuffer<int>(_context, capacity);
        }
        var packed = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(_requestStaging.Span);
        for (int i = 0; i < n; i++)
            Interop.Kernels.SampleTopK.Pack(packed.Slice(i * Interop.Kernels.SampleTopK.RequestInts), requests[i], count, logitRows);
        _requestStaging.UploadAsync(_requests!.Memory, 0, ints * sizeof(int), _stream);
        _sample.LaunchRows(_stream, D(logits), count, logitRows, _requests.Span, n, _sampledRows!.Span);
        _sampledRows.Download(tokens[..n], _stream);
    }

    /// <summary>Device-to-device copy bandwidth over two buffers of <paramref name="bytes"/>, in GB/s (10⁹ bytes) counting
    /// bytes read plus bytes written: the roofline decode is compared with (it reads weights at this rate at best).</summary>
    public double MeasureCopyBandwidthGBps(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bytes, 1L << 20);
        const int Copies = 10;
        using var src = new DeviceMemory(_context, bytes);
        using var dst = new DeviceMemory(_context, bytes);
        using var start = new CudaEvent(_context);
        using var stop = new CudaEvent(_context);
        src.Fill(0, _stream);
        DeviceMemory.Copy(src, 0, dst, 0, bytes, _stream);  // warm-up: first touch of both buffers
        start.Record(_stream);
        for (int i = 0; i < Copies; i++) DeviceMemory.Copy(src, 0, dst, 0, bytes, _stream);
        stop.Record(_stream);
        stop.Synchronize();
        double seconds = stop.ElapsedSince(start) / 1000.0;
        return 2.0 * bytes * Copies / seconds / 1e9;
    }

    /// <summary>Uploads host floats into an activation (tests and the op suite set inputs with it).</summary>
    internal void Write(Activation x, int offset, ReadOnlySpan<float> source)
    {
        ((CudaActivation)x).Buffer.Upload(source, _stream, offset);
        _stream.Synchronize();
    }

    /// <summary>Frees the launch scratch, the modules, the stream and the context.</summary>
    public void Dispose()
    {
        _stream.Synchronize();
        _tokens?.Dispose();
        _copyPairs?.Dispose();
        _ragged?.Dispose();
        _scores?.Dispose();
        _sampled.Dispose();
        _topkOut?.Dispose();
        _requestStaging?.Dispose();
        _requests?.Dispose();
        _sampledRows?.Dispose();
        _kernels.Dispose();
        _stream.Dispose();
        _context.Dispose();
    }
}
