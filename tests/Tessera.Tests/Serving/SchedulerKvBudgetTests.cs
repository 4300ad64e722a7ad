using NUnit.Framework;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Kv;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Serving;

/// <summary>KV budgets under the batching scheduler: each request gets the tokens the single-sequence generator gives
/// with the same budget, alone or beside others, its blocks stay within the budget (the tail blocks go back to the
/// pool), and requests without a budget keep sharing cached prefixes.</summary>
public class SchedulerKvBudgetTests
{
    private const string File = "tinystories-656k-f32.gguf";

    private static GenerationOptions Options(KvBudgetOptions? budget, int n = 120) => new()
    {
        MaxTokens = n, StopAtEndOfGeneration = false, KvBudget = budget, Sampling = new SamplingOptions { Temperature = 0 },
    };

    private static List<int> Reference(string prompt, GenerationOptions o, int context = 256)
    {
        var m = ModelCache.Get(File);
        using var state = m.Model.CreateState(context);
        return new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode(prompt, true), o)
            .Where(t => t.Token >= 0).Select(t => t.Token).ToList();
    }

    [TestCase(KvPolicy.Window)]
    [TestCase(KvPolicy.H2O)]
    [TestCase(KvPolicy.Keyformer)]
    [TestCase(KvPolicy.SnapKv)]
    public async Task Alone_it_draws_what_the_generator_draws(KvPolicy policy)
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 256, MaxSequences = 8 });
        var o = Options(new KvBudgetOptions { Budget = 24, Policy = policy });
        Assert.That((await e.CompleteAsync("Once upon a time", o)).TokenIds, Is.EqualTo(Reference("Once upon a time", o)));
    }

    [TestCase(KvPolicy.H2O, 300)]
    [TestCase(KvPolicy.SnapKv, 100)]
    [TestCase(KvPolicy.Keyformer, 100)]
    public async Task A_prompt_longer_than_the_budget_keeps_what_the_generator_keeps_under_load(KvPolicy policy, int promptTokens)
    {
        // Beside other requests the step cuts the long prompt into chunks of whatever fits; compression still happens
        // only at 256-position boundaries and at the prompt's end, as in the generator.
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 512, MaxSequences = 8, MaxTokensPerStep = 64 });
        var m = ModelCache.Get(File);
        var ids = m.Tokenizer.Encode(System.IO.File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Data", "long-stories.txt")), true).Take(promptTokens).ToList();
        string prompt = m.Tokenizer.Decode(ids.Skip(1).ToArray());
        var o = Options(new KvBudgetOptions { Budget = 24, Policy = policy }, 40);
        var others = Enumerable.Range(0, 3).Select(i => e.CompleteAsync("Once upon a time", Options(null, 30 + 10 * i))).ToList();
        var got = await e.CompleteAsync(prompt, o);
        await Task.WhenAll(others);
        var want = Reference(prompt, o, 512);
        Assert.That(got.TokenIds, Is.EqualTo(want));
        Assert.That(e.KvBlocksInUse, Is.Zero);
    }

    [Test]
    public async Task Budgeted_requests_draw_what_the_generator_draws_beside_others()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 256, MaxSequences = 8 });
        var budgets = new[]
        {
            new KvBudgetOptions { Budget = 24, Policy = KvPolicy.H2O },
            new KvBudgetOptions { Budget = 32, Policy = KvPolicy.Window, Sinks = 2 },
            new KvBudgetOptions { Budget = 40, Policy = KvPolicy.Keyformer },
            new KvBudgetOptions { Budget = 20, Policy = KvPolicy.SnapKv },
        };
        var prompts = new[] { "Once upon a time", "Lily and Ben went to the park.", "The little dog", "Tom had a red ball" };
        long dropped = e.KvDroppedPositions;
        var runs = prompts.Select((p, i) => e.CompleteAsync(p, Options(budgets[i]))).ToList();
        var plain = e.CompleteAsync("One day, a bird", Options(null, 60));
        for (int i = 0; i < prompts.Length; i++)
            Assert.That((await runs[i]).TokenIds, Is.EqualTo(Reference(prompts[i], Options(budgets[i]))), prompts[i]);
        Assert.That((await plain).TokenIds, Is.EqualTo(Reference("One day, a bird", Options(null, 60))));
        Assert.That(e.KvDroppedPositions - dropped, Is.GreaterThan(4 * 60));
        Assert.That(e.KvBlocksInUse, Is.Zero, "every block came back");
    }

    [Test]
    public async Task A_budgeted_request_holds_only_its_budgets_blocks()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 256, MaxSequences = 4 });
        int perBlock = e.KvBlockBytes > 0 ? (int)(e.KvBlockBytes / (2L * e.Config.Layers * e.Config.KvDim * sizeof(short))) : 16;
        int most = 0, steps = 0;
        // 300 tokens: past the 256-position context for a full cache of prompt + output, never past 24 rows here.
        await foreach (var chunk in e.GenerateAsync("Once upon a time", Options(new KvBudgetOptions { Budget = 24, Policy = KvPolicy.Window }, 300)))
        {
            most = Math.Max(most, e.KvBlocksInUse);
            steps++;
        }
        Assert.That(steps, Is.GreaterThan(250));
        Assert.That(most, Is.LessThanOrEqualTo((24 + perBlock - 1) / perBlock + 1));
        var full = await e.CompleteAsync("Once upon a time", Options(null, 300));
        Assert.That(full.FinishReason, Is.EqualTo(FinishReason.ContextFull), "without a budget the same request runs out of context");
    }

    [Test]
    public async Task Bad_budgets_are_refused_by_name()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 256 });
        var ex = Assert.ThrowsAsync<ArgumentException>(() => e.CompleteChoicesAsync("Once", Options(new KvBudgetOptions { Budget = 32 }) with { Choices = 2, Sampling = new SamplingOptions { Temperature = 1, Seed = 1 } }));
        Assert.That(ex!.Message, Does.Contain("--kv-budget: not together with several choices"));
    }
}
