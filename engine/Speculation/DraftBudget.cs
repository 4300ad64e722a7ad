using System.Diagnostics;

namespace Tessera.Speculation;

/// <summary>
/// Sizes each draft by what verifying it costs on this machine and model and what it yields, measured as generation
/// runs. Draft sizes k come from a short ladder (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 96, 127, and the
/// limit itself); for each, running averages of the pass time and of the tokens the pass produced (1 + accepted
/// drafts), and for k = 0 the time of a plain decoding step. The budget picks the k with the most tokens per second,
/// and k = 0, plain decoding, when no draft pays: speculation turns itself down where verification is dear (a tiny
/// model on a CPU, whose output projection dominates) or guesses are poor. Sizes are explored upwards, each tried
/// once when the one below it is the best so far; every 16th pass tries the next size up from the best and every
/// 32nd is a plain step (while drafting pays nothing else measures plain decoding, and a stale average would hold the
/// choice), and while nothing pays the smallest size is probed after 16, then 32, … up to 1024 plain steps, so the
/// averages follow the text at a bounded cost. A pass's time is all it costs, from its start to the next pass's
/// (drafting, the forward, drawing and handing out its tokens); one far slower than its average counts as twice
/// the average. Fixed-size arrays: no allocation per token.
/// </summary>
public sealed class DraftBudget
{
    private const double Smoothing = 0.2;      // weight of the newest pass in the running averages
    // A pass slower than this many times its average (the OS took the core, a collection ran) counts as this many:
    // one such outlier in the plain average would otherwise make every draft look cheap for many passes.
    private const double OutlierCap = 2;
    private static readonly int[] Ladder = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 96, 127];
    private readonly int[] _sizes;             // the ladder up to the limit, and the limit
    private readonly double[] _seconds;        // by size index: running average time of a pass (0 = never tried)
    private readonly double[] _tokens;         // by size index: running average tokens a pass yielded
    private double _plain;                     // running average time of a plain step (0 = not yet measured)
    private int _passes;
    private int _probeEvery = 16, _sinceProbe;   // plain steps between probes while nothing pays (doubling)

    /// <summary>A budget for drafts of up to <paramref name="draftMax"/> tokens.</summary>
    public DraftBudget(int draftMax)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(draftMax, 1);
        _sizes = [.. Ladder.Where(k => k < draftMax), draftMax];
        _seconds = new double[_sizes.Length];
        _tokens = new double[_sizes.Length];
    }

    /// <summary>The draft size to ask the proposer for, at most <paramref name="room"/>; 0 for a plain step.</summary>
    public int DraftLength(int room)
    {
        if (room <= 0) return 0;
        if (_plain <= 0) return 0;                                    // measure plain decoding first
        int best = -1, usable = 0;
        double bestRate = 1 / _plain;
        for (int i = 0; i < _sizes.Length && _sizes[i] <= room; i++, usable++)
        {
            if (_seconds[i] <= 0)
            {
                // Never tried: try it (verification is lossless), but only while growing has paid so far, i.e. the
                // next size up from the best one. A size past a loss is left alone: on a machine where rows are dear
                // the big trees would cost many steps each just to be measured.
                if (best == i - 1) return _sizes[i];
                break;
            }
            double rate = _tokens[i] / _seconds[i];
            if (rate > bestRate) { best = i; bestRate = rate; }
        }
        if (usable == 0) return 0;
        if (best < 0)
        {
            // Nothing pays: probe the smallest size now and then, less often each time it still does not (16, 32, …
            // 1024 steps), and never before the plain steps since the last probe are 100 times what a probe loses
            // (a draft model catching up on the context costs several steps), so probing stays within about 1%.
            double lost = _seconds[0] > 0 ? Math.Max(0, _seconds[0] - _tokens[0] * _plain) : 0;
            if (++_sinceProbe < Math.Max(_probeEvery, Math.Min(100 * lost / _plain, 1 << 16))) return 0;
            _sinceProbe = 0;
            _probeEvery = Math.Min(2 * _probeEvery, 1024);
            return _sizes[0];
        }
        _probeEvery = 16;
        ++_passes;
        if (_passes % 32 == 0) return 0;                              // keep plain measured: while drafting pays no
                                                                      // plain step runs, and a stale average would hold
        if (_passes % 16 == 0)
            return _sizes[Math.Min(best + 1, usable - 1)];            // keep the neighbour measured
        return _sizes[best];
    }

    /// <summary>Records a pass that took <paramref name="ticks"/> <see cref="Stopwatch"/> ticks: a plain step when
    /// <paramref name="size"/> is 0, else a draft asked for <paramref name="size"/> tokens of which
    /// <paramref name="accepted"/> were right.</summary>
    public void Record(int size, long ticks, int accepted)
    {
        double s = (double)ticks / Stopwatch.Frequency;
        if (size == 0)
        {
            _plain = _plain <= 0 ? s : (1 - Smoothing) * _plain + Smoothing * Math.Min(s, OutlierCap * _plain);
            return;
        }
        int i = Array.IndexOf(_sizes, size);
        if (i < 0) return;  // a size the room forced below the ladder: not one the budget chooses between
        double tokens = 1 + accepted;
        bool first = _seconds[i] <= 0;
        _seconds[i] = first ? s : (1 - Smoothing) * _seconds[i] + Smoothing * Math.Min(s, OutlierCap * _seconds[i]);
        _tokens[i] = first ? tokens : (1 - Smoothing) * _tokens[i] + Smoothing * tokens;
    }
}

/// <summary>
/// One draft budget per model, method and draft limit, for the life of the model: what a pass costs and yields is a
/// property of the machine, the model and the proposer, so a new request starts from what earlier ones measured
/// instead of exploring again (which short requests could not repay). Shared by <see cref="Generation.TextGenerator"/>
/// and the batching scheduler; concurrent sequences update it without a lock (a lost update only delays the averages).
/// </summary>
public static class DraftBudgets
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Model.LlamaModel,
        System.Collections.Concurrent.ConcurrentDictionary<(SpeculationMethod, bool, int), DraftBudget>> Budgets = new();

    /// <summary>The budget of <paramref name="model"/> for <paramref name="spec"/>'s proposer and a limit of
    /// <paramref name="limit"/> draft tokens.</summary>
    public static DraftBudget For(Model.LlamaModel model, SpeculationOptions spec, int limit) =>
        Budgets.GetOrCreateValue(model).GetOrAdd((spec.Method, spec.ProposerFactory is not null, limit), _ => new DraftBudget(limit));
}
