using NUnit.Framework;
using Tessera.Kv;

namespace Tessera.Tests.Kv;

/// <summary>The bookkeeping of a KV budget on a simulated cache whose rows hold their own position: after every
/// compression the rows hold exactly the positions the budget says, the kept set is the policy's (sinks, recent window,
/// best-scored), and nothing is dropped below the cap.</summary>
public class KvBudgetTests
{
    // Runs `steps` (rows per step) through a budget, applying its moves to `rows` (row → position it holds), and
    // checks after each step that the rows agree with budget.Positions. `score(position)` is what each scored row
    // gives each cached position.
    private static (KvBudget Budget, int[] Rows) Simulate(KvBudgetOptions o, int[] steps, Func<int, float>? score = null)
    {
        int capacity = steps.Sum() + 1;
        var b = new KvBudget(o, capacity);
        var rows = new int[capacity];
        var from = new int[capacity];
        var to = new int[capacity];
        int position = 0;
        foreach (int n in steps)
        {
            for (int i = 0; i < n; i++) rows[b.Count + i] = position + i;
            var received = b.ScoreFrom(n) < 0 ? [] : Enumerable.Range(0, b.Count + n).Select(r => score!(rows[r])).ToArray();
            int moves = b.AfterStep(position, n, received, from, to);
            for (int m = 0; m < moves; m++) rows[to[m]] = rows[from[m]];
            position += n;
            Assert.That(b.Count, Is.LessThanOrEqualTo(o.Budget - 1), "cached rows after a step");
            Assert.That(rows.AsSpan(0, b.Count).ToArray(), Is.EqualTo(b.Positions.AsSpan(0, b.Count).ToArray()), "rows hold the positions the budget records");
        }
        return (b, rows);
    }

    private static int[] Kept(KvBudget b) => [.. b.Positions.AsSpan(0, b.Count).ToArray().Order()];

    [Test]
    public void Window_keeps_the_sinks_and_the_most_recent()
    {
        var (b, _) = Simulate(new KvBudgetOptions { Budget = 10, Policy = KvPolicy.Window, Sinks = 2 }, [7, 1, 1, 5, 1, 1, 1, 20, 1]);
        int end = 38;
        Assert.That(Kept(b), Is.EqualTo(new[] { 0, 1 }.Concat(Enumerable.Range(end - 7, 7))));
        Assert.That(b.Dropped, Is.EqualTo(end - 9));
    }

    [Test]
    public void Window_without_sinks_keeps_only_the_recent()
    {
        var (b, _) = Simulate(new KvBudgetOptions { Budget = 6, Policy = KvPolicy.Window, Sinks = 0 }, [3, 3, 3, 1]);
        Assert.That(Kept(b), Is.EqualTo(new[] { 5, 6, 7, 8, 9 }));
    }

    [Test]
    public void Nothing_is_dropped_under_the_cap()
    {
        var (b, _) = Simulate(new KvBudgetOptions { Budget = 50, Policy = KvPolicy.H2O }, [20, 1, 1, 27], p => 1f / (p + 1));
        Assert.That(b.Dropped, Is.EqualTo(0));
        Assert.That(Kept(b), Is.EqualTo(Enumerable.Range(0, 49)));
    }

    [Test]
    public void H2O_keeps_sinks_recent_half_and_the_heaviest()
    {
        // Positions divisible by 5 receive the most attention: they are the heavy hitters.
        var (b, _) = Simulate(new KvBudgetOptions { Budget = 21, Policy = KvPolicy.H2O, Sinks = 2 }, [40], p => p % 5 == 0 ? 1f : 0.01f);
        // keep 20: sinks 0, 1; recent 10 (30..39); 8 heavy among 2..29, highest first, ties to the earlier position:
        // 5, 10, 15, 20, 25 (score 1), then the earliest of the rest (2, 3, 4).
        int[] want = [0, 1, 2, 3, 4, 5, 10, 15, 20, 25, .. Enumerable.Range(30, 10)];
        Assert.That(Kept(b), Is.EqualTo(want.Order()));
    }

    [Test]
    public void H2O_scores_accumulate_over_steps_and_follow_moved_rows()
    {
        // One prompt, then decode steps whose attention always favours position 3: it must survive every compression.
        var (b, _) = Simulate(new KvBudgetOptions { Budget = 8, Policy = KvPolicy.H2O, Sinks = 1 }, [10, 1, 1, 1, 1, 1, 1, 1, 1, 1], p => p == 3 ? 5f : 0.1f);
        Assert.That(Kept(b), Does.Contain(3));
        Assert.That(Kept(b), Does.Contain(0));
        Assert.That(Kept(b).Max(), Is.EqualTo(18));
    }

    [Test]
    public void SnapKv_pools_the_votes_and_keeps_its_window()
    {
        // One vote spike at 10: pooled over width 5, positions 8..12 all rank above the rest.
        var o = new KvBudgetOptions { Budget = 12, Policy = KvPolicy.SnapKv, Sinks = 0, SnapWindow = 6 };
        var (b, _) = Simulate(o, [40], p => p == 10 ? 1f : 0f);
        Assert.That(Kept(b), Is.EqualTo(new[] { 8, 9, 10, 11, 12, 34, 35, 36, 37, 38, 39 }));
    }

    [Test]
    public void Keyformer_keeps_thirty_percent_recent()
    {
        var o = new KvBudgetOptions { Budget = 21, Policy = KvPolicy.Keyformer, Sinks = 0 };
        var (b, _) = Simulate(o, [50], p => p < 14 ? 1f : 0f);
        // keep 20: recent round(0.3 · 20) = 6 (44..49), then the 14 best: 0..13.
        Assert.That(Kept(b), Is.EqualTo(Enumerable.Range(0, 14).Concat(Enumerable.Range(44, 6))));
        Assert.That(new Tessera.Kv.Policies.KeyformerPolicy().Temperature(0, 100), Is.EqualTo(1f));
        Assert.That(new Tessera.Kv.Policies.KeyformerPolicy().Temperature(50, 100), Is.EqualTo(1.5f));
        Assert.That(new Tessera.Kv.Policies.KeyformerPolicy().Temperature(300, 100), Is.EqualTo(2f));
    }

    [TestCase(4, 4, "--kv-budget 4: must be at least --kv-sinks 4 + 1")]
    [TestCase(0, 0, "--kv-budget 0: must be at least --kv-sinks 0 + 1")]
    [TestCase(8, -1, "--kv-sinks -1: must not be negative")]
    public void Bad_numbers_are_named(int budget, int sinks, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => new KvBudgetOptions { Budget = budget, Sinks = sinks }.Validate());
        Assert.That(e!.Message, Does.Contain(message));
    }

    [Test]
    public void An_unknown_policy_is_named()
    {
        var e = Assert.Throws<ArgumentException>(() => KvBudgetOptions.ParsePolicy("lru"));
        Assert.That(e!.Message, Does.Contain("--kv-policy 'lru': unknown (window, h2o, keyformer, snapkv)"));
    }
}
