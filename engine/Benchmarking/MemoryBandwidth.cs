using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Tessera.Quantization;

namespace Tessera.Benchmarking;

/// <summary>Measures the machine's streaming read bandwidth: the roof a decode step (which reads every weight once) can
/// reach. Each thread sums its own slice of a buffer far larger than the caches; the best of a few runs counts.</summary>
public static unsafe class MemoryBandwidth
{
    /// <summary>Read bandwidth in GB/s (10⁹ bytes per second) with <paramref name="threads"/> threads.</summary>
    /// <param name="threads">Threads reading at once (use the benchmark's thread count).</param>
    /// <param name="bufferBytes">Buffer size; much larger than the last-level cache (hundreds of MiB).</param>
    /// <param name="runs">Timed runs; the best is returned.</param>
    public static double Measure(int threads, long bufferBytes = 512L << 20, int runs = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferBytes, 1L << 20);
        ArgumentOutOfRangeException.ThrowIfLessThan(runs, 1);
        const int Align = 4096;
        long lanes = bufferBytes / sizeof(ulong);
        var buffer = (ulong*)NativeMemory.AlignedAlloc((nuint)(lanes * sizeof(ulong)), Align);
        try
        {
            // Non-zero contents: untouched (or all-zero, copy-on-write) pages could map to the kernel's shared zero page and
            // read from cache, which would flatter the figure.
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                var (start, end) = Slice(lanes, threads, t);
                for (long i = start; i < end; i++) buffer[i] = (ulong)i * 0x9E3779B97F4A7C15UL;
            });
            ulong sink = 0;
            double best = 0;
            var partial = new ulong[threads];
            for (int run = 0; run <= runs; run++)
            {
                long t0 = Stopwatch.GetTimestamp();
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    var (start, end) = Slice(lanes, threads, t);
                    partial[t] = SumSlice(buffer + start, end - start);
                });
                double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                foreach (ulong p in partial) sink += p;
                // Run 0 is a warm-up (thread pool start, page-table walks).
                if (run > 0) best = Math.Max(best, lanes * sizeof(ulong) / seconds / 1e9);
            }
            GC.KeepAlive(sink);
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    private static (long Start, long End) Slice(long lanes, int parts, int t)
    {
        // Slices are whole 64-byte lines so no two threads share one.
        long lines = lanes / 8;
        return (lines * t / parts * 8, t == parts - 1 ? lanes : lines * (t + 1) / parts * 8);
    }

    /// <summary>Sums <paramref name="count"/> words with the widest vectors, four independent accumulators so that the
    /// adds do not limit the loads, asking for the data 4 KiB ahead as the decode kernels do (<c>DecodePrefetch</c>):
    /// without it the hardware prefetcher alone keeps too few misses in flight, and decode would read faster than the
    /// "roof".</summary>
    private static ulong SumSlice(ulong* p, long count)
    {
        int w = Vector<ulong>.Count;
        Vector<ulong> a0 = default, a1 = default, a2 = default, a3 = default;
        long i = 0;
        for (; i + 4 * w <= count; i += 4 * w)
        {
            if (Sse.IsSupported)
                for (int b = 0; b < 4 * w * sizeof(ulong); b += 64) Sse.Prefetch0((byte*)(p + i) + DecodePrefetch.StreamBytes + b);
            a0 += Vector.Load(p + i);
            a1 += Vector.Load(p + i + w);
            a2 += Vector.Load(p + i + 2 * w);
            a3 += Vector.Load(p + i + 3 * w);
        }
        ulong s = Vector.Sum(a0 + a1 + a2 + a3);
        for (; i < count; i++) s += p[i];
        return s;
    }
}
