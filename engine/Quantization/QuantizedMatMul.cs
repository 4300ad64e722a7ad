namespace Tessera.Quantization;

/// <summary>Y = X · Wᵀ for a weight matrix in a GGUF type, the way llama.cpp's CPU <c>mul_mat</c> does it: every activation row is
/// converted once to the weight type's <see cref="VecDotType"/>, then each (activation row, weight row) pair goes through
/// <see cref="VecDot"/>. Work is split over weight rows with <see cref="Parallel.For(int, int, Action{int})"/> when it is big enough.</summary>
public static unsafe class QuantizedMatMul
{
    // Below this many multiply-adds a call runs on the calling thread: starting tasks would cost more than it saves.
    private const long ParallelThreshold = 1L << 18;
    // Each task takes at least this many multiply-adds, so that per-task overhead stays small.
    private const long MinWorkPerChunk = 1L << 16;

    // Thread-count hook (tessera bench --threads): the one place the degree of parallelism of the products is set.
    private static int s_maxThreads;
    private static ParallelOptions s_parallel = new();

    /// <summary>Most threads one product may use, process-wide; 0 (the default) means all cores. Set through
    /// <see cref="Backends.Cpu.CpuBackend(int)"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public static int MaxThreads
    {
        get => s_maxThreads;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            s_maxThreads = value;
            s_parallel = new ParallelOptions { MaxDegreeOfParallelism = value > 0 ? value : -1 };
        }
    }

    /// <summary>Scratch bytes <see cref="Multiply(GgmlType, ReadOnlySpan{byte}, int, int, ReadOnlySpan{float}, int, Span{float}, Span{byte})"/>
    /// needs: the <paramref name="batch"/> activation rows in the vec-dot type.</summary>
    /// <exception cref="NotSupportedException"><paramref name="type"/> is not supported.</exception>
    public static int ScratchBytes(GgmlType type, int cols, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        return checked((int)(GgmlTypeInfo.RowBytes(VecDotType.For(type), cols) * batch));
    }

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
        var kernel = VecDot.Kernel(type);
        GgmlType vt = VecDotType.For(type);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        long actBytes = GgmlTypeInfo.RowBytes(vt, cols);
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
            for (int b = 0; b < batch; b++)
                ActivationQuantizer.QuantizeRowUnchecked(vt, px + (long)b * cols, ps + b * actBytes, cols);

            var job = new Job(kernel, weights, rowBytes, rows, cols, ps, actBytes, batch, py);
            long work = (long)rows * cols * batch;
            int workers = s_maxThreads > 0 ? s_maxThreads : Environment.ProcessorCount;
            if (work < ParallelThreshold || workers == 1)
            {
                job.Run(0, rows);
                return;
            }
            // About 4 chunks per core for load balance, but never chunks smaller than MinWorkPerChunk.
            long perRow = Math.Max(1L, (long)cols * batch);
            int minRows = (int)Math.Clamp(MinWorkPerChunk / perRow, 1, rows);
            int chunkRows = Math.Max(minRows, (rows + 4 * workers - 1) / (4 * workers));
            int chunks = (rows + chunkRows - 1) / chunkRows;
            if (chunks == 1)
            {
                job.Run(0, rows);
                return;
            }
            Parallel.For(0, chunks, s_parallel, c => job.Run(c * chunkRows, Math.Min(rows, (c + 1) * chunkRows)));
        }
    }

    /// <summary>Everything a task needs, as raw pointers (spans cannot enter the lambda).</summary>
    private sealed class Job(delegate*<byte*, byte*, int, float> kernel, byte* weights, long rowBytes, int rows, int cols,
        byte* act, long actBytes, int batch, float* y)
    {
        public void Run(int r0, int r1)
        {
            for (int r = r0; r < r1; r++)
            {
                byte* w = weights + r * rowBytes;
                for (int b = 0; b < batch; b++)
                    y[(long)b * rows + r] = kernel(w, act + b * actBytes, cols);
            }
        }
    }
}
