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
    private readonly Rope _rope;
    private readonly SwiGlu _swiGlu;
    private readonly Add _add;
    private readonly KvAppend _kvAppend;
    private readonly AttentionDecode _attention;
    private DeviceBuffer<int>? _tokens;
    private DeviceBuffer<float>? _scratch;
    private float[] _hostRows = [];

    private CudaBackend(CudaContext context)
    {
        _context = context;
        _stream = new CudaStream(context);
        _kernels = new KernelLibrary(context, KernelImages.Load);
        // Loading every module up front makes a missing or broken PTX image fail here, not mid-forward.
        _embed = new Embed(_kernels);
        _rmsNorm = new RmsNorm(_kernels);
        _gemv = new Gemv(_kernels);
        _rope = new Rope(_kernels);
        _swiGlu = new SwiGlu(_kernels);
        _add = new Add(_kernels);
        _kvAppend = new KvAppend(_kernels);
        _attention = new AttentionDecode(_kernels);
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

    /// <summary>The device in use.</summary>
    public CudaContext Context => _context;

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
    public KvCache CreateKvCache(LlamaConfig config, int capacity) => new CudaKvCache(_context, config, capacity);

    // The paged, ragged-batch ops (continuous batching) have no CUDA kernels yet; they say so instead of guessing.
    private static NotSupportedException NoPagedKernels(string op) =>
        new($"{op}: the CUDA backend has no paged-KV / ragged-batch kernels yet; serve many sequences on the CPU backend");

    /// <inheritdoc/>
    public KvCache CreatePagedKvCache(LlamaConfig config, int blocks, int blockSize) => throw NoPagedKernels(nameof(CreatePagedKvCache));

    /// <inheritdoc/>
    public void Rope(Activation x, RaggedBatch batch, int heads, int headDim, float theta, RopeLayout layout) => throw NoPagedKernels(nameof(Rope));

    /// <inheritdoc/>
    public void StoreKv(KvCache cache, int layer, Activation k, Activation v, RaggedBatch batch) => throw NoPagedKernels(nameof(StoreKv));

    /// <inheritdoc/>
    public void Attention(Activation q, KvCache cache, int layer, RaggedBatch batch, Activation output) => throw NoPagedKernels(nameof(Attention));

    /// <inheritdoc/>
    public void Embed(BackendWeight table, ReadOnlySpan<int> tokens, Activation output)
    {
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
        _rmsNorm.Launch(_stream, D(x), wv.Span, D(y), rows, wv.Length, eps);
    }

    /// <inheritdoc/>
    public void MatMul(BackendWeight w, Activation x, Activation y, int rows)
    {
        var cw = (CudaWeight)w;
        _gemv.Launch(_stream, cw.Format, cw.Memory.Span, cw.Source.Rows, cw.Source.Cols, D(x), D(y), rows);
    }

    /// <inheritdoc/>
    public void Rope(Activation x, int rows, int heads, int headDim, int startPos, float theta, RopeLayout layout) =>
        _rope.Launch(_stream, D(x), rows, heads, headDim, startPos, theta, layout == RopeLayout.AdjacentPairs);

    /// <inheritdoc/>
    public void SwiGlu(Activation gate, Activation up, int count) => _swiGlu.Launch(_stream, D(gate), D(up), count);

    /// <inheritdoc/>
    public void Add(Activation acc, Activation x, int count) => _add.Launch(_stream, D(acc), D(x), count);

    /// <inheritdoc/>
    public void StoreKv(KvCache cache, int layer, Activation k, Activation v, int rows, int startPos)
    {
        var c = (CudaKvCache)cache;
        int kvDim = c.Config.KvDim;
        if (startPos + rows > c.Cap) throw new InvalidOperationException($"KV cache holds {c.Cap} positions; cannot store up to {startPos + rows}");
        int n = rows * kvDim;
        _kvAppend.Launch(_stream, D(k), D(v), c.K[layer].Slice(startPos * kvDim, n), c.V[layer].Slice(startPos * kvDim, n), n);
    }

    /// <inheritdoc/>
    public void Attention(Activation q, KvCache cache, int layer, int rows, int startPos, Activation output)
    {
        var c = (CudaKvCache)cache;
        var cfg = c.Config;
        long need = AttentionDecode.ScratchFloats(rows, cfg.Heads, cfg.HeadDim, startPos + rows - 1);
        if (_scratch is null || _scratch.Length < need)
        {
            _stream.Synchronize();  // the old scratch may still be in use by queued kernels
            _scratch?.Dispose();
            _scratch = new DeviceBuffer<float>(_context, checked((int)Math.Max(need, 1 << 16)));
        }
        _attention.Launch(_stream, D(q), c.K[layer].Span, c.V[layer].Span, D(output), _scratch.Span,
            rows, cfg.Heads, cfg.KvHeads, cfg.HeadDim, startPos);
    }

    /// <inheritdoc/>
    public void Copy(Activation src, int srcOffset, Activation dst, int dstOffset, int count) =>
        DeviceMemory.Copy(((CudaActivation)src).Buffer.Memory, (long)srcOffset * sizeof(float),
            ((CudaActivation)dst).Buffer.Memory, (long)dstOffset * sizeof(float), (long)count * sizeof(float), _stream);

    /// <inheritdoc/>
    public void Read(Activation x, int offset, Span<float> destination) =>
        ((CudaActivation)x).Buffer.Download(destination, _stream, offset);

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
        _scratch?.Dispose();
        _kernels.Dispose();
        _stream.Dispose();
        _context.Dispose();
    }
}
