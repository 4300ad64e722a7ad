using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tessera.Quantization;

/// <summary>Y = X · Wᵀ for a weight matrix in a GGUF type, the way llama.cpp's CPU <c>mul_mat</c> does it: every activation row is
/// converted once to the weight type's <see cref="VecDotType"/>, then each (activation row, weight row) pair goes through
/// <see cref="VecDot"/>. Work is split over weight rows on the persistent <see cref="WorkerPool"/> when it is big enough; nothing is allocated per call.</summary>
public static unsafe class QuantizedMatMul
{
    // Below this many multiply-adds a call runs on the calling thread: starting tasks would cost more than it saves.
    private const long ParallelThreshold = 1L << 18;
    // Each task takes at least this many multiply-adds, so that per-task overhead stays small.
    private const long MinWorkPerChunk = 1L << 16;

    // Thread-count hook (tessera bench --threads): the one place the degree of parallelism of the products is set.
    private static int s_maxThreads;

    /// <summary>Most threads one product may use, process-wide; 0 (the default) means all cores. The shared worker
    /// pool has one thread per core, so today only 1 (run on the caller) and "all" are distinct. Set through
    /// <see cref="Backends.Cpu.CpuBackend(int)"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public static int MaxThreads
    {
        get => s_maxThreads;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            s_maxThreads = value;
        }
    }

    /// <summary>Scratch bytes <see cref="Multiply(GgmlType, ReadOnlySpan{byte}, int, int, ReadOnlySpan{float}, int, Span{float}, Span{byte})"/>
    /// needs: the <paramref name="batch"/> activation rows, converted for the weight type.</summary>
    /// <exception cref="NotSupportedException"><paramref name="type"/> is not supported.</exception>
    public static int ScratchBytes(GgmlType type, int cols, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        return checked((int)(ActivationRowBytes(type, cols) * batch));
    }

    /// <summary>Bytes of one converted activation row: the vec-dot type's row, except for F16 weights, whose activations
    /// are kept as floats holding F16 values (see <see cref="F16Wide"/>).</summary>
    private static long ActivationRowBytes(GgmlType type, int cols)
        => type == GgmlType.F16 && F16Wide.Lanes > 0 ? 4L * cols : GgmlTypeInfo.RowBytes(VecDotType.For(type), cols);

    /// <summary>Converts activation row <paramref name="x"/> for products with <paramref name="type"/> weights.</summary>
    private static void ConvertRow(GgmlType type, GgmlType vt, float* x, byte* dst, int cols)
    {
        if (type == GgmlType.F16 && F16Wide.Lanes > 0) F16Wide.RoundRow(x, (float*)dst, cols);
        else ActivationQuantizer.QuantizeRowUnchecked(vt, x, dst, cols);
    }

    // From this many activation values on, their conversion is shared by the pool's threads (a dispatch costs a few
    // microseconds; quantizing 64K values to Q8_K about 80).
    private const long ParallelConvertValues = 1L << 16;

    /// <summary>Converts the <paramref name="batch"/> activation rows at <paramref name="x"/> into <paramref name="dst"/>
    /// (<paramref name="actBytes"/> apart). A prompt's rows are converted by all threads: on the calling thread alone
    /// they took 5% of a 128-token prefill while the other threads waited. Each row is converted by one thread with
    /// the same code, so the bytes do not depend on the split.</summary>
    private static void ConvertRows(GgmlType type, GgmlType vt, float* x, byte* dst, long actBytes, int cols, int batch)
    {
        var pool = WorkerPool.Shared;
        if ((long)batch * cols < ParallelConvertValues || batch < 2 || pool.Threads == 1 || s_maxThreads == 1)
        {
            for (int b = 0; b < batch; b++) ConvertRow(type, vt, x + (long)b * cols, dst + b * actBytes, cols);
            return;
        }
        var job = ConvertJob.ForThisThread;
        job.Type = type;
        job.VecDotType = vt;
        job.X = x;
        job.Dst = dst;
        job.ActBytes = actBytes;
        job.Cols = cols;
        job.Reset(batch); // one chunk per row
        pool.Run(job);
    }

    /// <summary>Activation rows converted one per chunk (see <see cref="ConvertRows"/>); one reused instance per
    /// dispatching thread.</summary>
    private sealed class ConvertJob : PoolJob
    {
        [ThreadStatic] private static ConvertJob? t_job;
        public static ConvertJob ForThisThread => t_job ??= new ConvertJob();

        public GgmlType Type, VecDotType;
        public float* X;
        public byte* Dst;
        public long ActBytes;
        public int Cols;

        public override void Run()
        {
            for (int b = NextChunk(); b >= 0; b = NextChunk())
                ConvertRow(Type, VecDotType, X + (long)b * Cols, Dst + b * ActBytes, Cols);
        }
    }

    private static delegate*<byte*, byte*, int, float> KernelFor(GgmlType type)
        => type == GgmlType.F16 && F16Wide.Lanes > 0 ? &F16Wide.Dot : VecDot.Kernel(type);

    /// <summary>Computes <c>y[b*rows + r] = dot(weights row r, x row b)</c> for every weight row r and activation row b.</summary>
    /// <param name="type">The weights' type.</param>
    /// <param name="weights"><paramref name="rows"/> rows of <c>RowBytes(type, cols)</c> bytes each.</param>
    /// <param name="rows">Weight rows (output features).</param>
    /// <param name="cols">Elements per row (input features), a multiple of the type's block size.</param>
    /// <param name="x"><paramref name="batch"/> activation rows of <paramref name="cols"/> floats.</param>
    /// <param name="batch">Activation rows.</param>
    /// <param name="y">Receives <paramref name="batch"/> rows of <paramref name="rows"/> outputs.</param>
    /// <param name="scratch">At least <see cref="ScratchBytes"/> bytes; its contents are overwritten.</param>
    /// <exception cref="NotSupportedException"><paramref name="type"/> is not supported.</exception>
    public static void Multiply(GgmlType type, ReadOnlySpan<byte> weights, int rows, int cols,
        ReadOnlySpan<float> x, int batch, Span<float> y, Span<byte> scratch)
    {
        fixed (byte* w = weights)
            Multiply(type, w, weights.Length, rows, cols, x, batch, y, scratch);
    }

    /// <summary>As the span overload, for weights that may exceed 2 GiB (memory-mapped tensors).</summary>
    /// <param name="type">The weights' type.</param>
    /// <param name="weights">Start of <paramref name="rows"/> rows of <c>RowBytes(type, cols)</c> bytes each; must stay valid during the call.</param>
    /// <param name="weightBytes">Bytes readable at <paramref name="weights"/>; must be at least rows * RowBytes(type, cols).</param>
    /// <param name="rows">Weight rows (output features).</param>
    /// <param name="cols">Elements per row (input features), a multiple of the type's block size.</param>
    /// <param name="x"><paramref name="batch"/> activation rows of <paramref name="cols"/> floats.</param>
    /// <param name="batch">Activation rows.</param>
    /// <param name="y">Receives <paramref name="batch"/> rows of <paramref name="rows"/> outputs.</param>
    /// <param name="scratch">At least <see cref="ScratchBytes"/> bytes; its contents are overwritten.</param>
    /// <exception cref="NotSupportedException"><paramref name="type"/> is not supported.</exception>
    public static void Multiply(GgmlType type, byte* weights, long weightBytes, int rows, int cols,
        ReadOnlySpan<float> x, int batch, Span<float> y, Span<byte> scratch)
    {
        var kernel = KernelFor(type);
        GgmlType vt = VecDotType.For(type);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        long actBytes = ActivationRowBytes(type, cols);
        if (weightBytes < rowBytes * rows)
            throw new ArgumentException($"{rows} rows of {cols} {type} take {rowBytes * rows} bytes, got {weightBytes}", nameof(weightBytes));
        if (x.Length < (long)batch * cols) throw new ArgumentException($"x needs {(long)batch * cols} floats, has {x.Length}", nameof(x));
        if (y.Length < (long)batch * rows) throw new ArgumentException($"y needs {(long)batch * rows} floats, has {y.Length}", nameof(y));
        if (scratch.Length < actBytes * batch) throw new ArgumentException($"scratch needs {actBytes * batch} bytes, has {scratch.Length}", nameof(scratch));
        if (weights == null && rows > 0 && cols > 0) throw new ArgumentNullException(nameof(weights));
        if (rows == 0 || batch == 0) return;

        fixed (float* px = x)
        fixed (float* py = y)
        fixed (byte* ps = scratch)
        {
            ConvertRows(type, vt, px, ps, actBytes, cols, batch);
            var job = MatMulJob.ForThisThread;
            job.Set(kernel, ChooseTile(type, batch), cols, ps, actBytes, batch);
            job.Add(weights, rowBytes, rows, py);
            Dispatch(job);
        }
    }

    /// <summary>Several products of one activation batch at once (fused QKV, gate/up): the activations are converted once
    /// and one dispatch covers every weight's rows. All weights share <paramref name="type"/> and <paramref name="cols"/>.
    /// No argument checks: the backend passes tensors it has already shape-checked.</summary>
    internal static void MultiplyFused(GgmlType type, int cols, float* x, int batch, byte* scratch,
        byte* w0, int rows0, float* y0, byte* w1, int rows1, float* y1, byte* w2, int rows2, float* y2)
    {
        var kernel = KernelFor(type);
        GgmlType vt = VecDotType.For(type);
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        long actBytes = ActivationRowBytes(type, cols);
        ConvertRows(type, vt, x, scratch, actBytes, cols, batch);
        var job = MatMulJob.ForThisThread;
        job.Set(kernel, ChooseTile(type, batch), cols, scratch, actBytes, batch);
        job.Add(w0, rowBytes, rows0, y0);
        job.Add(w1, rowBytes, rows1, y1);
        if (w2 != null) job.Add(w2, rowBytes, rows2, y2);
        Dispatch(job);
    }

    /// <summary>How a product with two or more activation rows runs; every path gives the single-pair kernel's results.</summary>
    private enum TilePath { None, F16Widened, Q8_0, Q4_0, Q4_K, Q6_K }

    // From this many activation rows on, 4-row tiles are unpacked once per product and reused (RunRowsPacked): with
    // two rows the register tile already shares its unpacking, so packing only pays from the second pass over a tile.
    private const int PackedBatch = 3;

    /// <summary>F16 weights: widen each weight row once per product instead of once per (weight row, activation row) pair
    /// (<see cref="F16Wide"/>). Q8_0/Q4_0: the 4 x 2 register tile (<see cref="Q8Tile"/>). Q4_K and Q6_K: their tiles
    /// (<see cref="Q4KTile"/>, <see cref="Q6KTile"/>) at any batch: unpacking the weights dominates K-quants, so decode
    /// gains from sharing it too.</summary>
    private static TilePath ChooseTile(GgmlType type, int batch) =>
        type == GgmlType.Q4_K && Q4KTile.Supported ? TilePath.Q4_K
        : type == GgmlType.Q6_K && Q6KTile.Supported ? TilePath.Q6_K
        : batch < 2 ? TilePath.None : type switch
    {
        GgmlType.F16 when F16Wide.Lanes > 0 => TilePath.F16Widened,
        GgmlType.Q8_0 when Q8Tile.Supported => TilePath.Q8_0,
        GgmlType.Q4_0 when Q8Tile.Supported => TilePath.Q4_0,
        _ => TilePath.None,
    };

    private static void Dispatch(MatMulJob job)
    {
        long work = (long)job.TotalRows * job.Cols * job.Batch;
        var pool = WorkerPool.Shared;
        if (work < ParallelThreshold || pool.Threads == 1 || s_maxThreads == 1)
        {
            job.Reset(job.Chunk(job.TotalRows));
            job.Run();
            return;
        }
        // About 8 chunks per thread for load balance (a shared machine deschedules threads), but none smaller than MinWorkPerChunk.
        long perRow = Math.Max(1L, (long)job.Cols * job.Batch);
        int minRows = (int)Math.Clamp(MinWorkPerChunk / perRow, 1, job.TotalRows);
        int chunkRows = Math.Max(minRows, (job.TotalRows + 8 * pool.Threads - 1) / (8 * pool.Threads));
        if (job.Tiled) chunkRows = (chunkRows + 3) & ~3; // whole 4-row tiles
        job.Reset(job.Chunk(chunkRows));
        if (job.Chunks == 1) job.Run();
        else pool.Run(job);
    }

    /// <summary>Up to three weight matrices times one converted activation batch, in chunks of rows.
    /// One instance per dispatching thread, reused: a product allocates nothing.</summary>
    private sealed class MatMulJob : PoolJob
    {
        [ThreadStatic] private static MatMulJob? t_job;
        [ThreadStatic] private static float[]? t_widened;
        [ThreadStatic] private static byte[]? t_packed;
        public static MatMulJob ForThisThread => t_job ??= new MatMulJob();

        private delegate*<byte*, byte*, int, float> _kernel;
        private byte* _act;
        private long _actBytes;
        // The activations as the packed tiles take them: _act itself, or Q8_0 rows repacked (PackQ8Activations) into
        // _tileActBuffer. That buffer is pinned (the workers read it through a pointer) and belongs to this per-thread
        // job, so the GC frees it with the job when the dispatching thread ends.
        private byte* _tileAct;
        private long _tileActBytes;
        private byte[]? _tileActBuffer;
        private int _segments, _chunkRows;
        private TilePath _path;
        private readonly byte*[] _w = new byte*[3];
        private readonly long[] _rowBytes = new long[3];
        private readonly int[] _rows = new int[3];
        private readonly int[] _firstChunk = new int[4];
        private readonly float*[] _y = new float*[3];

        public int Cols { get; private set; }
        public int Batch { get; private set; }
        public int TotalRows { get; private set; }
        public int Chunks { get; private set; }
        public bool Tiled => _path != TilePath.None;

        public void Set(delegate*<byte*, byte*, int, float> kernel, TilePath path, int cols, byte* act, long actBytes, int batch)
        {
            _kernel = kernel;
            _path = path;
            Cols = cols;
            _act = _tileAct = act;
            _actBytes = _tileActBytes = actBytes;
            Batch = batch;
            _segments = 0;
            TotalRows = 0;
            if ((path == TilePath.Q8_0 || path == TilePath.Q4_0) && batch >= PackedBatch) PackQ8Activations();
        }

        /// <summary>The Q8_0 activation rows in <see cref="Q8Tile.PackActivations"/>'s layout, for the packed tiles; into
        /// a buffer of this job's that grows, never shrinks (a product allocates nothing once it has grown).</summary>
        private void PackQ8Activations()
        {
            int nb = Cols / 32;
            long rowBytes = Q8Tile.PackedActivationBytes(nb), need = rowBytes * Batch + 64; // + 64: room to align
            if (_tileActBuffer == null || _tileActBuffer.Length < need)
                _tileActBuffer = GC.AllocateUninitializedArray<byte>(checked((int)Math.Max(need, 2L * (_tileActBuffer?.Length ?? 0))), pinned: true);
            byte* dst = (byte*)(((nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_tileActBuffer)) + 63) & ~(nint)63);
            for (int b = 0; b < Batch; b++) Q8Tile.PackActivations(_act + b * _actBytes, nb, dst + b * rowBytes);
            _tileAct = dst;
            _tileActBytes = rowBytes;
        }

        public void Add(byte* w, long rowBytes, int rows, float* y)
        {
            _w[_segments] = w;
            _rowBytes[_segments] = rowBytes;
            _rows[_segments] = rows;
            _y[_segments] = y;
            _segments++;
            TotalRows += rows;
        }

        /// <summary>Splits every segment into chunks of <paramref name="chunkRows"/> rows; returns the chunk count.</summary>
        public int Chunk(int chunkRows)
        {
            _chunkRows = chunkRows;
            int total = 0;
            for (int s = 0; s < _segments; s++)
            {
                _firstChunk[s] = total;
                total += (_rows[s] + chunkRows - 1) / chunkRows;
            }
            _firstChunk[_segments] = total;
            Chunks = total;
            return total;
        }

        public override void Run()
        {
            for (int c = NextChunk(); c >= 0; c = NextChunk())
            {
                int s = 0;
                while (c >= _firstChunk[s + 1]) s++;
                int r0 = (c - _firstChunk[s]) * _chunkRows;
                int r1 = Math.Min(_rows[s], r0 + _chunkRows);
                RunRows(_w[s], _rowBytes[s], _rows[s], _y[s], r0, r1);
            }
        }

        private void RunRows(byte* weights, long rowBytes, int rows, float* y, int r0, int r1)
        {
            switch (_path)
            {
                case TilePath.F16Widened: RunRowsWidened(weights, rowBytes, rows, y, r0, r1); return;
                case TilePath.Q8_0 when Batch >= PackedBatch:
                    RunRowsPacked(&Q8Tile.Pack<Q8_0Weights>, &Q8Tile.MultiplyPacked<Q8_0Weights>, Q8Tile.PackedBlockBytes, 32, weights, rowBytes, rows, y, r0, r1);
                    return;
                case TilePath.Q4_0 when Batch >= PackedBatch:
                    RunRowsPacked(&Q8Tile.Pack<Q4_0Weights>, &Q8Tile.MultiplyPacked<Q4_0Weights>, Q8Tile.PackedBlockBytes, 32, weights, rowBytes, rows, y, r0, r1);
                    return;
                case TilePath.Q8_0: RunRowsTiled<Q8_0Weights>(weights, rowBytes, rows, y, r0, r1); return;
                case TilePath.Q4_0: RunRowsTiled<Q4_0Weights>(weights, rowBytes, rows, y, r0, r1); return;
                case TilePath.Q4_K when Batch >= PackedBatch:
                    RunRowsPacked(&Q4KTile.Pack, &Q4KTile.MultiplyPacked, Q4KTile.PackedBlockBytes, 256, weights, rowBytes, rows, y, r0, r1);
                    return;
                case TilePath.Q4_K: RunRowsK(&Q4KTile.Multiply, weights, rowBytes, rows, y, r0, r1); return;
                case TilePath.Q6_K when Batch >= PackedBatch:
                    RunRowsPacked(&Q6KTile.Pack, &Q6KTile.MultiplyPacked, Q6KTile.PackedBlockBytes, 256, weights, rowBytes, rows, y, r0, r1);
                    return;
                case TilePath.Q6_K: RunRowsK(&Q6KTile.Multiply, weights, rowBytes, rows, y, r0, r1); return;
            }
            RunPairs(weights, rowBytes, rows, y, r0, r1);
        }

        /// <summary>Every (weight row, activation row) pair through the single-pair kernel: the untiled path, and the
        /// rows a tile leaves over.</summary>
        private void RunPairs(byte* weights, long rowBytes, int rows, float* y, int r0, int r1)
        {
            var kernel = _kernel;
            int cols = Cols, batch = Batch;
            for (int r = r0; r < r1; r++)
            {
                byte* w = weights + r * rowBytes;
                for (int b = 0; b < batch; b++)
                    y[(long)b * rows + r] = kernel(w, _act + b * _actBytes, cols);
            }
        }

        /// <summary>Q8_0-activation types, several activation rows: tiles of 4 weight rows x 2 activation rows
        /// (<see cref="Q8Tile"/>); leftover weight rows take the single-pair kernel.</summary>
        private void RunRowsTiled<TW>(byte* weights, long rowBytes, int rows, float* y, int r0, int r1) where TW : IQ8BlockWeights
        {
            int nb = Cols / 32, batch = Batch;
            int r = r0;
            for (; r + 4 <= r1; r += 4)
                for (int b = 0; b < batch; b += 2)
                    Q8Tile.Multiply<TW>(weights + r * rowBytes, rowBytes, _act + b * _actBytes, _actBytes,
                        Math.Min(2, batch - b), nb, y + (long)b * rows + r, rows);
            RunPairs(weights, rowBytes, rows, y, r, r1);
        }

        /// <summary><see cref="PackedBatch"/> or more activation rows: each 4-row tile is unpacked once
        /// (<see cref="Q4KTile.Pack"/>, <see cref="Q6KTile.Pack"/>, <see cref="Q8Tile.Pack{TW}"/>, into a thread-local buffer that stays in L1/L2) and then
        /// multiplied with all activation rows in one call; the packed products equal the register tiles bit for bit.</summary>
        private void RunRowsPacked(delegate*<byte*, long, int, byte*, void> pack,
            delegate*<byte*, byte*, long, int, int, float*, long, void> multiplyPacked, int packedBlockBytes, int blockSize,
            byte* weights, long rowBytes, int rows, float* y, int r0, int r1)
        {
            int nb = Cols / blockSize, batch = Batch;
            int need = nb * packedBlockBytes + 64;
            if (t_packed == null || t_packed.Length < need) t_packed = new byte[need];
            fixed (byte* raw = t_packed)
            {
                byte* packed = (byte*)(((nint)raw + 63) & ~(nint)63);
                int r = r0;
                for (; r + 4 <= r1; r += 4)
                {
                    pack(weights + r * rowBytes, rowBytes, nb, packed);
                    multiplyPacked(packed, _tileAct, _tileActBytes, batch, nb, y + r, rows);
                }
                RunPairs(weights, rowBytes, rows, y, r, r1);
            }
        }

        /// <summary>K-quants: tiles of 4 weight rows x up to 2 activation rows (<see cref="Q4KTile"/>, <see cref="Q6KTile"/>).</summary>
        private void RunRowsK(delegate*<byte*, long, byte*, long, int, int, float*, long, void> tile,
            byte* weights, long rowBytes, int rows, float* y, int r0, int r1)
        {
            int nb = Cols / 256, batch = Batch;
            int r = r0;
            for (; r + 4 <= r1; r += 4)
                for (int b = 0; b < batch; b += 2)
                    tile(weights + r * rowBytes, rowBytes, _act + b * _actBytes, _actBytes,
                        Math.Min(2, batch - b), nb, y + (long)b * rows + r, rows);
            RunPairs(weights, rowBytes, rows, y, r, r1);
        }

        /// <summary>F16 weights, several activation rows: four weight rows are widened to floats (thread-local buffer,
        /// grown once) and multiplied with every activation row by <see cref="F16Wide.DotWidened4"/>.</summary>
        private void RunRowsWidened(byte* weights, long rowBytes, int rows, float* y, int r0, int r1)
        {
            int cols = Cols, batch = Batch;
            if (t_widened == null || t_widened.Length < 4 * cols) t_widened = new float[4 * cols];
            float* tmp = stackalloc float[4];
            fixed (float* wf = t_widened)
            {
                int r = r0;
                for (; r + 4 <= r1; r += 4)
                {
                    for (int k = 0; k < 4; k++) F16Wide.WidenRow(weights + (r + k) * rowBytes, wf + k * cols, cols);
                    for (int b = 0; b < batch; b++)
                    {
                        F16Wide.DotWidened4(wf, cols, (float*)(_act + b * _actBytes), cols, tmp);
                        float* yr = y + (long)b * rows + r;
                        yr[0] = tmp[0]; yr[1] = tmp[1]; yr[2] = tmp[2]; yr[3] = tmp[3];
                    }
                }
                for (; r < r1; r++)
                {
                    F16Wide.WidenRow(weights + r * rowBytes, wf, cols);
                    for (int b = 0; b < batch; b++)
                        y[(long)b * rows + r] = F16Wide.DotWidened(wf, (float*)(_act + b * _actBytes), cols);
                }
            }
        }
    }
}
