using System.Diagnostics;

namespace Tessera.Speculation;

/// <summary>
/// Sizes each draft by what verifying it costs on this machine and model, measured as generation runs: the time of a
/// pass of n rows (n = 1 .. DraftMax + 1, an average over recent passes) and the rate at which drafted tokens are
/// accepted. A pass of k drafts is expected to yield 1 + a + a² + … + aᵏ tokens (a = acceptance rate, each draft
/// token accepted only after the ones before it); the budget picks the k with the most tokens per second, and k = 0,
/// plain decoding, when no draft pays. So speculation turns itself down where verification is dear (a tiny model on a
/// CPU, whose output projection dominates) or guesses are poor. Every 16th pass that would not draft drafts one token
/// anyway so the rate stays measured. Fixed-size arrays: no allocation per token.
/// </summary>
public sealed class DraftBudget
{
    private const double Smoothing = 0.2;     // weight of the newest pass in the running averages
    private readonly double[] _seconds;       // by rows: running average time of a pass, 0 = not measured yet
    private double _acceptance = 0.5;         // running average of accepted / drafted per pass (a prior to start)
    private int _skipped;

    /// <summary>A budget for drafts of up to <paramref name="draftMax"/> tokens.</summary>
    public DraftBudget(int draftMax) => _seconds = new double[draftMax + 2];

    /// <summary>The draft length to ask the proposer for, at most <paramref name="room"/>.</summary>
    public int DraftLength(int room)
    {
        room = Math.Min(room, _seconds.Length - 2);
        if (room <= 0) return 0;
        double one = _seconds[1];
        if (one <= 0) return 0;                              // measure plain decoding first
        int best = 0;
        double bestRate = 1 / one, expected = 1, term = 1;
        for (int k = 1; k <= room; k++)
        {
            term *= _acceptance;
            expected += term;
            double t = _seconds[k + 1];
            if (t <= 0) return k;                            // unmeasured: try it (verification is lossless)
            if (expected / t > bestRate) { best = k; bestRate = expected / t; }
        }
        if (best == 0 && ++_skipped % 16 == 0) return 1;
        return best;
    }

    /// <summary>Records a pass of <paramref name="rows"/> rows (the last token and <paramref name="drafted"/>
    /// drafts) that took <paramref name="ticks"/> <see cref="Stopwatch"/> ticks; <paramref name="accepted"/> of the
    /// drafts were right.</summary>
    public void Record(int rows, long ticks, int drafted, int accepted)
    {
        if (rows < 1 || rows >= _seconds.Length) return;
        double s = (double)ticks / Stopwatch.Frequency;
        _seconds[rows] = _seconds[rows] <= 0 ? s : (1 - Smoothing) * _seconds[rows] + Smoothing * s;
        if (drafted > 0) _acceptance = (1 - Smoothing) * _acceptance + Smoothing * ((double)accepted / drafted);
    }
}
