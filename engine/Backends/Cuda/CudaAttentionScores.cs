using Tessera.Interop;
using Tessera.Model;
using Kernel = Tessera.Interop.Kernels.AttentionScores;

namespace Tessera.Backends.Cuda;

/// <summary>
/// The CUDA side of <see cref="AttentionScores"/>: each layer's attention launches the attention_scores kernels,
/// which add the layer's sums to an accumulator on the device; the host's <see cref="AttentionScores.Of"/> downloads
/// them once, when first read after the step (one synchronization per step, not per layer). The layout names the
/// scored sequences (<see cref="Kernel.SequenceInts"/> ints each) and is uploaded only when it changes, so a step's
/// later layers upload nothing (except under a pruned prompt, whose hidden rows differ per layer). Buffers grow and
/// are reused; the accumulator holds one owner's step at a time, and a previous owner's unread sums are fetched
/// before another's overwrite them.
/// </summary>
internal sealed class CudaAttentionScores : IDisposable
{
    private readonly CudaContext _context;
    private readonly CudaStream _stream;
    private readonly Kernel _kernel;
    private readonly StagedInts _layout;
    private readonly Action<Span<float>> _download;
    private int[] _host = [];
    private DeviceBuffer<float>? _lse, _part, _acc;
    private readonly WeakReference<AttentionScores?> _owner = new(null);   // whose step the accumulator holds
    private int _generation;

    public CudaAttentionScores(CudaContext context, CudaStream stream, Interop.Kernels.KernelLibrary kernels)
    {
        _context = context;
        _stream = stream;
        _kernel = new Kernel(kernels);
        _layout = new StagedInts(context, stream);
        _download = Download;
    }

    /// <summary>Adds layer <paramref name="layer"/>'s scores of <paramref name="batch"/>'s scored rows (queries
    /// <paramref name="q"/>, keys of <paramref name="kPool"/> through the batch's device layout <paramref name="m"/>),
    /// after the layer's attention, which has checked the batch (tree sizes included).</summary>
    public void Add(AttentionScores scores, RaggedBatch batch, int layer, DeviceSpan<float> q, DeviceSpan<Half> kPool, CudaRaggedBatch m, LlamaConfig config,
        AttentionVariant variant = default)
    {
        // The score kernels compute plain attention's probabilities; the models with variants (Gemma) refuse KV
        // budgets and prompt pruning before a step gets here.
        if (variant != default) throw new NotSupportedException("attention scores under a soft cap, sliding window or other scale are not computed on the cuda backend");
        int seqs = 0, rows = 0, longest = 0;
        for (int s = 0; s < batch.Sequences; s++)
        {
            int from = scores.FromRow(s);
            if (from < 0) continue;
            seqs++;
            rows += batch.RowCount[s] - from;
            longest = Math.Max(longest, scores.LengthOf(s));
        }
        if (seqs == 0) return;
        int length = seqs * Kernel.SequenceInts + rows;
        if (_host.Length < length) _host = new int[StagedInts.Grow(length)];
        var h = _host.AsSpan(0, length);
        for (int s = 0, i = 0, row = 0; s < batch.Sequences; s++)
        {
            int from = scores.FromRow(s);
            if (from < 0) continue;
            int n = batch.RowCount[s] - from;
            bool hides = batch.HiddenEnd[s] > batch.HiddenStart[s];
            ulong seed = scores.SeedOf(s);
            var d = h.Slice(i * Kernel.SequenceInts, Kernel.SequenceInts);
            d[0] = batch.RowStart[s] + from;
            d[1] = n;
            d[2] = batch.StartPos[s] + from;
            d[3] = batch.TableStart[s];
            d[4] = batch.IsTree[s] ? batch.StartPos[s] : Interop.Kernels.FlashAttention.Chain;
            d[5] = hides ? batch.HiddenStart[s] : 0;
            d[6] = hides ? batch.HiddenEnd[s] : 0;
            d[7] = scores.OffsetOf(s);
            d[8] = scores.LengthOf(s);
            d[9] = scores.KindOf(s) == AttentionScoreKind.GumbelSoftmax ? 1 : 0;
            d[10] = BitConverter.SingleToInt32Bits(1f / scores.TemperatureOf(s));
            d[11] = (int)(uint)seed;
            d[12] = (int)(uint)(seed >> 32);
            d[13] = row;
            h.Slice(seqs * Kernel.SequenceInts + row, n).Fill(i);
            i++;
            row += n;
        }
        _layout.Upload(h);

        int total = scores.Total, heads = config.Heads;
        bool same = _owner.TryGetTarget(out var owner) && ReferenceEquals(owner, scores);
        bool first = scores.Generation != _generation || !same;
        if (!same) owner?.Fetch();   // its sums would be overwritten below
        Ensure(ref _lse, (long)rows * heads);
        Ensure(ref _part, (long)total * heads);
        if (first) Ensure(ref _acc, total);   // within a step the total does not change
        _kernel.Launch(_stream, q, batch.Rows, kPool, m.Tables, m.Masks, m.Positions, _layout.Device.Slice(0, length), seqs, rows, longest,
            _lse!.Span, _part!.Span, _acc!.Slice(0, total), total, first, heads, config.KvHeads, config.HeadDim, batch.BlockSize, layer);
        _owner.SetTarget(scores);
        _generation = scores.Generation;
        scores.DownloadWith(_download);
    }

    private void Download(Span<float> values) => _acc!.Download(values, _stream);

    // A buffer of at least n floats (grown by doubling; queued kernels may still read the old one).
    private void Ensure(ref DeviceBuffer<float>? buffer, long n)
    {
        if (buffer is not null && buffer.Length >= n) return;
        if (n > int.MaxValue) throw new InvalidOperationException($"attention scores need {n} floats of device scratch");
        int length = (int)Math.Min(int.MaxValue, Math.Max(n, 2L * (buffer?.Length ?? 0)));
        _stream.Synchronize();
        buffer?.Dispose();
        buffer = new DeviceBuffer<float>(_context, length);
    }

    public void Dispose()
    {
        _layout.Dispose();
        _lse?.Dispose();
        _part?.Dispose();
        _acc?.Dispose();
    }
}
