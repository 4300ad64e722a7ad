using NUnit.Framework;
using Tessera.Quantization;

namespace Tessera.Tests.Backends;

[TestFixture]
public class WorkerPoolTests
{
    private sealed class CountingJob : PoolJob
    {
        public int[] Hits = [];
        public override void Run()
        {
            for (int c = NextChunk(); c >= 0; c = NextChunk()) Interlocked.Increment(ref Hits[c]);
        }
    }

    /// <summary>Every chunk runs exactly once per dispatch, including dispatches after the workers have gone to sleep
    /// (the idle pauses) and back-to-back ones while they spin.</summary>
    [Test]
    public void EveryChunkRunsExactlyOnce_SpinningAndAfterSleeping()
    {
        var pool = new WorkerPool(3);
        var job = new CountingJob();
        for (int i = 0; i < 400; i++)
        {
            int chunks = 1 + i % 37;
            job.Hits = new int[chunks];
            job.Reset(chunks);
            pool.Run(job);
            Assert.That(job.Hits, Is.All.EqualTo(1), $"dispatch {i}");
            if (i % 50 == 0) Thread.Sleep(5); // longer than the workers' spin window
        }
    }

    /// <summary>A dispatch from inside a job (or from a second thread while one is running) runs inline rather than deadlocking.</summary>
    [Test]
    public void NestedDispatchRunsInline()
    {
        var pool = new WorkerPool(2);
        var inner = new CountingJob { Hits = new int[5] };
        var outer = new NestedJob(pool, inner);
        outer.Reset(4);
        pool.Run(outer);
        Assert.That(inner.Hits, Is.All.EqualTo(4));
    }

    private sealed class NestedJob(WorkerPool pool, CountingJob inner) : PoolJob
    {
        private readonly Lock _gate = new();
        public override void Run()
        {
            for (int c = NextChunk(); c >= 0; c = NextChunk())
                lock (_gate)
                {
                    inner.Reset(inner.Hits.Length);
                    pool.Run(inner);
                }
        }
    }
}
