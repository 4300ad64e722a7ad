using System.Numerics;
using System.Runtime.InteropServices;
using Tessera.Interop;
using Tessera.Interop.Kernels;

namespace Tessera.Backends.Cuda;

/// <summary>
/// The device copy of a <see cref="RaggedBatch"/>'s layout that the paged kernels read, as one int array:
/// <c>[positions: rows][slots: rows][tiles: 7 × tiles][tables: entries][masks: 4 × rows, when the batch has trees]</c>.
/// Positions feed rope; a row's slot (<c>table[c / block] × block + c % block</c> for its cache position c, resolved
/// and bounds-checked here) feeds kv_append; tiles (up to 16 consecutive rows of one sequence: first row, rows, first
/// cache position, table offset, tree start, hidden start and end), the concatenated block tables and the rows'
/// ancestor masks feed flash attention.
/// <para>
/// The model calls rope, kv_append and attention with the same batch in every layer, so the layout is rebuilt on the
/// host at each call (cheap: a few ints per row and block) but uploaded only when it differs from the last upload
/// (<see cref="StagedInts"/>).
/// </para>
/// </summary>
internal sealed class CudaRaggedBatch(CudaContext context, CudaStream stream) : IDisposable
{
    private int[] _host = [];           // the layout being built
    private readonly StagedInts _ints = new(context, stream);
    private DeviceBuffer<int> Device => _ints.Device;

    /// <summary>Rows of the last batch.</summary>
    public int Rows { get; private set; }
    /// <summary>Flash attention tiles of the last batch.</summary>
    public int Tiles { get; private set; }
    /// <summary>(rows) position of each row.</summary>
    public DeviceSpan<int> Positions => Device.Slice(0, Rows);
    /// <summary>(rows) pool slot of each row.</summary>
    public DeviceSpan<int> Slots => Device.Slice(Rows, Rows);
    /// <summary>(tiles × <see cref="FlashAttention.TileInts"/>) the attention tiles.</summary>
    public DeviceSpan<int> TileSpan => Device.Slice(2 * Rows, FlashAttention.TileInts * Tiles);
    /// <summary>All block tables, concatenated (the tiles' table offsets index into it).</summary>
    public DeviceSpan<int> Tables => Device.Slice(2 * Rows + FlashAttention.TileInts * Tiles, _tableEntries);
    /// <summary>(rows × 4) the ancestor masks, or an empty view when the batch has no tree.</summary>
    public DeviceSpan<int> Masks => _masks ? Device.Slice(2 * Rows + FlashAttention.TileInts * Tiles + _tableEntries, FlashAttention.MaskInts * Rows) : default;
    private int _tableEntries;
    private bool _masks;

    /// <summary>Number of tiles <paramref name="batch"/> is cut into.</summary>
    internal static int TileCount(RaggedBatch batch)
    {
        int tiles = 0;
        for (int s = 0; s < batch.Sequences; s++) tiles += (batch.RowCount[s] + FlashAttention.RowsPerBlock - 1) / FlashAttention.RowsPerBlock;
        return tiles;
    }

    /// <summary>Ints of the layout of <paramref name="batch"/>.</summary>
    /// <exception cref="ArgumentException">The batch is empty or its layout would not fit the staging buffer.</exception>
    internal static int LayoutLength(RaggedBatch batch)
    {
        int seqs = batch.Sequences;
        if (batch.Rows == 0 || seqs == 0) throw new ArgumentException("the ragged batch is empty", nameof(batch));
        long length = 2L * batch.Rows + (long)FlashAttention.TileInts * TileCount(batch) + batch.TableStart[seqs - 1] + batch.TableLength[seqs - 1]
            + (batch.HasTrees ? (long)FlashAttention.MaskInts * batch.Rows : 0);
        if (length > StagedInts.MaxInts) throw new ArgumentException($"the ragged batch's layout takes {length} ints, more than {StagedInts.MaxInts}", nameof(batch));
        return (int)length;
    }

    /// <summary>Writes the layout of <paramref name="batch"/> into <paramref name="layout"/> (<see cref="LayoutLength"/>
    /// ints), checking that the batch's arrays agree with each other; returns the tile count.</summary>
    /// <exception cref="ArgumentException">The batch is inconsistent; the message names the row.</exception>
    internal static int Layout(RaggedBatch batch, Span<int> layout)
    {
        int rows = batch.Rows, seqs = batch.Sequences;
        int shift = BitOperations.Log2((uint)batch.BlockSize), mask = batch.BlockSize - 1;
        int tile = 2 * rows;
        for (int s = 0; s < seqs; s++)
        {
            int start = batch.RowStart[s], count = batch.RowCount[s], pos0 = batch.StartPos[s];
            var table = batch.Table(s);
            for (int i = 0; i < count; i++)
            {
                int r = start + i, pos = batch.CachePositions[r];
                // The kernels take a sequence's rows as consecutive cache positions from StartPos (RaggedBatch makes
                // them so); a batch edited by hand that broke this would attend with the wrong mask. RoPE positions
                // are free (rope reads each row's own): past the cache rows under a KV budget, with gaps in a pruned
                // prompt's kept rows.
                if (batch.RowSequence[r] != s || pos != pos0 + i)
                    throw new ArgumentException($"ragged batch row {r}: sequence {batch.RowSequence[r]} at position {batch.Positions[r]}, cache position {pos}; expected sequence {s} at {pos0 + i}", nameof(batch));
                if ((pos >> shift) >= table.Length)
                    throw new ArgumentException($"ragged batch row {r}: position {pos} is past the {table.Length} blocks of sequence {s}'s table", nameof(batch));
                long slot = ((long)table[pos >> shift] << shift) | (uint)(pos & mask);
                if ((ulong)slot > int.MaxValue) throw new ArgumentException($"ragged batch row {r}: slot {slot} is outside any pool", nameof(batch));
                layout[r] = batch.Positions[r];
                layout[rows + r] = (int)slot;
            }
            for (int r0 = 0; r0 < count; r0 += FlashAttention.RowsPerBlock)
            {
                layout[tile++] = start + r0;
                layout[tile++] = Math.Min(FlashAttention.RowsPerBlock, count - r0);
                layout[tile++] = pos0 + r0;
                layout[tile++] = batch.TableStart[s];
                layout[tile++] = batch.IsTree[s] ? pos0 : FlashAttention.Chain;
                bool hides = batch.HiddenEnd[s] > batch.HiddenStart[s];
                layout[tile++] = hides ? batch.HiddenStart[s] : 0;
                layout[tile++] = hides ? batch.HiddenEnd[s] : 0;
            }
        }
        int entries = batch.TableStart[seqs - 1] + batch.TableLength[seqs - 1];
        batch.Tables.AsSpan(0, entries).CopyTo(layout[tile..]);
        if (batch.HasTrees)
            // The kernel reads 32-bit words, low first: the ulong masks' own little-endian layout.
            MemoryMarshal.Cast<ulong, int>(batch.Ancestors.AsSpan(0, rows * RaggedBatch.MaskWords)).CopyTo(layout[(tile + entries)..]);
        return (tile - 2 * rows) / FlashAttention.TileInts;
    }

    /// <summary>Builds the layout of <paramref name="batch"/> and uploads it unless the device already holds exactly
    /// this layout.</summary>
    /// <exception cref="ArgumentException">The batch is empty or inconsistent; the message says where.</exception>
    public void Use(RaggedBatch batch)
    {
        int length = LayoutLength(batch);
        if (_host.Length < length) _host = new int[StagedInts.Grow(length)];
        var h = _host.AsSpan(0, length);
        int tiles = Layout(batch, h);
        Rows = batch.Rows;
        Tiles = tiles;
        _masks = batch.HasTrees;
        _tableEntries = length - 2 * Rows - FlashAttention.TileInts * tiles - (_masks ? FlashAttention.MaskInts * Rows : 0);
        _ints.Upload(h);
    }

    /// <summary>Frees the buffers (the caller has synchronized the stream).</summary>
    public void Dispose() => _ints.Dispose();
}
