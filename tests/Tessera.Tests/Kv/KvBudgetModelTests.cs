using NUnit.Framework;
using Tessera.Evaluation;
using Tessera.Generation;
using Tessera.Kv;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Kv;

/// <summary>KV budgets on the real TinyStories model: a budget that drops nothing changes no bit, a compacted cache
/// attends exactly as the same kept positions laid out another way, and a budget keeps a generation going past the
/// cache's size in bounded memory.</summary>
public class KvBudgetModelTests
{
    private static string Story => File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Data", "story.txt"));

    [TestCase(KvPolicy.H2O)]
    [TestCase(KvPolicy.Window)]
    [TestCase(KvPolicy.Keyformer)]
    [TestCase(KvPolicy.SnapKv)]
    public void A_budget_of_the_whole_context_gives_the_same_perplexity_to_the_bit(KvPolicy policy)
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var full = Perplexity.Compute(m, Story, 64);
        // The chunk's last token sees all 64 positions, the budget's cap: nothing is dropped before it is scored.
        var capped = Perplexity.Compute(m, Story, 64, kvBudget: new KvBudgetOptions { Budget = 64, Policy = policy });
        Assert.That(capped.ChunkValues, Is.EqualTo(full.ChunkValues));
        var tight = Perplexity.Compute(m, Story, 64, kvBudget: new KvBudgetOptions { Budget = 16, Policy = policy });
        Assert.That(tight.Value, Is.Not.EqualTo(full.Value), "a budget of 16 drops positions the scored tokens would see");
    }

    [Test]
    public void Greedy_generation_is_unchanged_by_a_budget_it_never_reaches()
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var prompt = m.Tokenizer.Encode("Once upon a time, there was a dog named Max.", true);
        var plain = Generate(m, prompt, null, 128);
        var capped = Generate(m, prompt, new KvBudgetOptions { Budget = prompt.Count + 41, Policy = KvPolicy.H2O }, 128);
        Assert.That(capped.Tokens, Is.EqualTo(plain.Tokens));
        Assert.That(capped.Stats.KvDroppedPositions, Is.EqualTo(0));
    }

    [TestCase(KvPolicy.Window)]
    [TestCase(KvPolicy.H2O)]
    public void A_budget_lets_generation_run_past_the_cache_in_bounded_memory(KvPolicy policy)
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var prompt = m.Tokenizer.Encode("One day, Lily went to the park with her mom.", true);
        var r = Generate(m, prompt, new KvBudgetOptions { Budget = 24, Policy = policy }, 64, maxTokens: 150);
        Assert.That(r.Tokens, Has.Count.EqualTo(150), "generated past the 64-row cache");
        Assert.That(r.Stats.FinishReason, Is.EqualTo(FinishReason.MaxTokens));
        Assert.That(r.Stats.KvPeakPositions, Is.LessThanOrEqualTo(Math.Max(prompt.Count, 23) + 1));
        // Every generated token is run (the last too: the cache then holds the whole text), 23 rows stay.
        Assert.That(r.Stats.KvDroppedPositions, Is.EqualTo(prompt.Count + 150 - 23));
    }

    [Test]
    public void A_prompt_longer_than_the_cache_runs_in_chunks_compressed_at_their_ends()
    {
        // 23 kept rows + one 256-row chunk fit the 279-row cache; the 400-token prompt does not, and need not.
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var prompt = m.Tokenizer.Encode(File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Data", "long-stories.txt")), true).Take(400).ToList();
        var r = Generate(m, prompt, new KvBudgetOptions { Budget = 24, Policy = KvPolicy.H2O }, 23 + KvBudget.PromptChunk, maxTokens: 20);
        Assert.That(r.Tokens, Has.Count.EqualTo(20));
        Assert.That(r.Stats.KvPeakPositions, Is.EqualTo(KvBudget.PromptChunk), "the peak is the first chunk: later ones add to the 23 kept rows");
        Assert.That(r.Stats.KvDroppedPositions, Is.EqualTo(400 + 20 - 23));
        using var small = m.Model.CreateState(100);
        small.UseKvBudget(new KvBudgetOptions { Budget = 24 });
        var e = Assert.Throws<InvalidOperationException>(() => m.Model.Forward(small, prompt.ToArray()));
        Assert.That(e!.Message, Does.Contain("a KV budget of 24 needs 279"));
    }

    private static (List<int> Tokens, GenerationStats Stats) Generate(Tessera.Model.LoadedModel m, IReadOnlyList<int> prompt, KvBudgetOptions? budget, int context, int maxTokens = 40)
    {
        using var state = m.Model.CreateState(context);
        var stats = new GenerationStats();
        var options = new GenerationOptions
        {
            MaxTokens = maxTokens, StopAtEndOfGeneration = false, KvBudget = budget,
            Sampling = new SamplingOptions { Temperature = 0 },
        };
        var tokens = new TextGenerator(m.Model, m.Tokenizer).Generate(state, prompt, options, stats).Where(t => t.Token >= 0).Select(t => t.Token).ToList();
        return (tokens, stats);
    }

    [TestCase(KvPolicy.H2O, 0, 40)]
    [TestCase(KvPolicy.Keyformer, 4, 40)]
    [TestCase(KvPolicy.SnapKv, 4, 64)]
    public void A_compacted_cache_attends_as_the_kept_positions_in_order(KvPolicy policy, int sinks, int budget)
    {
        // A prompt run under a budget, compacted by the budget's moves (rows out of position order); the same prompt
        // run in full, then its kept positions copied into rows 0.. in position order. The next token's logits must
        // agree (to the rounding of another summation order): the kept keys and values, at their RoPE positions, and
        // the next position counted past the dropped ones.
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var prompt = m.Tokenizer.Encode(Story, true).Take(90).ToArray();
        using var budgeted = m.Model.CreateState(128);
        budgeted.UseKvBudget(new KvBudgetOptions { Budget = budget, Policy = policy, Sinks = sinks });
        m.Model.Forward(budgeted, prompt);  // one step: every key and value as the full run computes it
        Assert.That(budgeted.Cached, Is.EqualTo(budget - 1));
        Assert.That(budgeted.Position, Is.EqualTo(90));
        var kept = budgeted.KvPolicy!.Positions.AsSpan(0, budget - 1).ToArray();
        Assert.That(kept, Is.Not.EqualTo(kept.Order().ToArray()), "the compaction moved rows out of order (what this test is about)");

        using var full = m.Model.CreateState(128);
        m.Model.Forward(full, prompt);
        int[] order = [.. kept.Order()];
        m.Model.Backend.CopyKv(full.Cache, order, Enumerable.Range(0, order.Length).ToArray());
        full.Cached = order.Length;

        int next = m.Tokenizer.Encode(" The", false)[0];
        m.Model.Forward(budgeted, [next]);
        m.Model.Forward(full, [next]);
        var a = budgeted.Logits;
        var b = full.Logits;
        double err = Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum() / b.Sum(y => (double)y * y));
        Assert.That(err, Is.LessThan(1e-5));
        Assert.That(Array.IndexOf(a, a.Max()), Is.EqualTo(Array.IndexOf(b, b.Max())));
    }

    [Test]
    public void A_budget_with_speculation_or_cautious_is_refused_by_name()
    {
        var budget = new KvBudgetOptions { Budget = 32 };
        var e = Assert.Throws<ArgumentException>(() => new GenerationOptions
        {
            KvBudget = budget, Speculation = new Tessera.Speculation.SpeculationOptions { Method = Tessera.Speculation.SpeculationMethod.Lookup },
        }.Validate());
        Assert.That(e!.Message, Does.Contain("--kv-budget: not together with --speculate"));
        e = Assert.Throws<ArgumentException>(() => new GenerationOptions { KvBudget = budget, Cautious = new CautiousOptions() }.Validate());
        Assert.That(e!.Message, Does.Contain("--kv-budget: not together with --cautious"));
    }
}
