using NUnit.Framework;
using Tessera.Evaluation;
using Tessera.Kv;
using Tessera.Pruning;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Pruning;

/// <summary><c>perplexity --agreement</c>: what changes nothing agrees everywhere; what drops tokens does not; one of a
/// budget and a pruning is asked for.</summary>
public class GreedyAgreementTests
{
    private static string Text => File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Data", "long-stories.txt"));

    [Test]
    public void Keep_one_and_an_unreached_budget_agree_everywhere_and_pruning_does_not()
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var keepAll = GreedyAgreement.Run(m, Text, null, new PrefillPruningOptions { Keep = 1 }, 200, 16);
        Assert.That(keepAll.Prompts, Is.GreaterThan(5));
        Assert.That((keepAll.Agreement, keepAll.MeanCommonPrefix), Is.EqualTo((1.0, 16.0)));
        var roomy = GreedyAgreement.Run(m, Text, new KvBudgetOptions { Budget = 400, Policy = KvPolicy.H2O }, null, 200, 16);
        Assert.That((roomy.Agreement, roomy.MeanCommonPrefix), Is.EqualTo((1.0, 16.0)));
        var pruned = GreedyAgreement.Run(m, Text, null, new PrefillPruningOptions { Keep = 0.3 }, 200, 16);
        Assert.That(pruned.Agreement, Is.LessThan(1.0), "pruning 70% of the prompt at layer 1 changes some continuation");
        Assert.That(pruned.MeanCommonPrefix, Is.LessThan(16.0));
    }

    [Test]
    public void Neither_or_both_is_refused()
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        Assert.Throws<ArgumentException>(() => GreedyAgreement.Run(m, Text, null, null, 200, 16));
        Assert.Throws<ArgumentException>(() => GreedyAgreement.Run(m, Text, new KvBudgetOptions { Budget = 64 }, new PrefillPruningOptions(), 200, 16));
    }
}
