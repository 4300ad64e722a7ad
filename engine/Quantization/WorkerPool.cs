using System.Diagnostics;

namespace Tessera.Quantization;

/// <summary>Work handed to <see cref="WorkerPool"/>: <see cref="Run"/> is called once on every participating thread and
/// takes chunks from <see cref="NextChunk"/> until none are left. Which thread takes a chunk varies; what a chunk computes
/// must not, so results are the same on every run (each output element is computed by one thread, in a fixed order).
/// Jobs are reused objects: dispatching one allocates nothing.</summary>
internal abstract class PoolJob
{
    private int _next;
    private int _chunks;

    /// <summary>Resets the chunk counter for a dispatch of <paramref name="chunks"/> chunks.</summary>
    public void Reset(int chunks)
    {
        _chunks = chunks;
        Volatile.Write(ref _next, 0);
    }

    /// <summary>The next chunk index to process, or -1 when all are taken.</summary>
    protected int NextChunk()
    {
        int c = Interlocked.Increment(ref _next) - 1;
        return c < _chunks ? c : -1;
    }

    /// <summary>Processes chunks until none are left.</summary>
    public abstract void Run();
}

/// <summary>
/// A persistent pool of threads for the forward pass's parallel ops (matrix products, attention). llama.cpp's
/// threadpool is the model: the workers spin on a generation counter between dispatches, because an op takes tens of
/// microseconds and waking a blocked thread costs about as much; after a while without work they block, so an idle
/// process does not burn a core. The calling thread takes part, and chunks are handed out by an atomic counter so a
/// thread the OS descheduled (the machine may be shared) does not stall the others. Nothing is allocated per dispatch.
/// </summary>
internal sealed class WorkerPool
{
    /// <summary>One pool for the process, with a worker per core beyond the calling thread.</summary>
    public static readonly WorkerPool Shared = new(Environment.ProcessorCount);

    // How long an idle worker spins before blocking: long enough to cover the gap between two ops of a token.
    private static readonly long SpinTicks = Stopwatch.Frequency / 2000; // 0.5 ms

    private readonly Lock _dispatch = new();
    // One per worker, set by every dispatch; reset by its worker once it has seen the new generation, before it reports done,
    // so a dispatch can never land between a reset and the wait it would have ended.
    private readonly ManualResetEventSlim[] _wake;
    private PoolJob? _job;
    private int _generation;
    private int _pending;
    [ThreadStatic] private static bool t_isWorker;

    /// <summary>A pool of <paramref name="threads"/> threads in all, the caller included.</summary>
    public WorkerPool(int threads)
    {
        Threads = Math.Max(1, threads);
        _wake = new ManualResetEventSlim[Threads];
        for (int i = 1; i < Threads; i++)
        {
            var wake = _wake[i] = new ManualResetEventSlim(false);
            var t = new Thread(() => WorkerLoop(wake, 0)) { IsBackground = true, Name = $"tessera-worker-{i}" };
            t.Start();
        }
    }

    /// <summary>Threads that run a job, the caller included.</summary>
    public int Threads { get; }

    /// <summary>Runs <paramref name="job"/> (already <see cref="PoolJob.Reset"/>) on every thread and returns when it is done.
    /// A call from inside a job, or while another thread is dispatching, runs the job on the caller alone.</summary>
    public void Run(PoolJob job)
    {
        if (Threads == 1 || t_isWorker || !_dispatch.TryEnter())
        {
            job.Run();
            return;
        }
        try
        {
            _job = job;
            Volatile.Write(ref _pending, Threads - 1);
            Interlocked.Increment(ref _generation);
            for (int i = 1; i < _wake.Length; i++) _wake[i].Set();
            t_isWorker = true;
            try { job.Run(); }
            finally { t_isWorker = false; }
            var spin = new SpinWait();
            while (Volatile.Read(ref _pending) > 0) spin.SpinOnce(-1);
            _job = null;
        }
        finally { _dispatch.Exit(); }
    }

    private void WorkerLoop(ManualResetEventSlim wake, int seen)
    {
        t_isWorker = true;
        // 'seen' starts at the generation the pool was built with, not the one current when this thread first runs:
        // a dispatch may come before the thread is scheduled, and reading the counter here would skip it, leaving
        // the dispatcher waiting forever for this worker (seen as an intermittent hang of the NativeAOT build).
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            int spins = 0;
            while (Volatile.Read(ref _generation) == seen)
            {
                if (++spins < 64) { Thread.SpinWait(20); continue; }
                spins = 0;
                if (Stopwatch.GetTimestamp() - start < SpinTicks) { Thread.Yield(); continue; }
                // Block until the next dispatch sets the event (the timeout is a backstop, not the wake-up path).
                while (Volatile.Read(ref _generation) == seen) wake.Wait(10);
                break;
            }
            seen = Volatile.Read(ref _generation);
            wake.Reset();
            try { _job?.Run(); }
            finally { Interlocked.Decrement(ref _pending); }
        }
    }
}
