using NUnit.Framework;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Pruning;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Serving;

/// <summary>Prompt pruning under the batching scheduler: a pruned prompt runs as a step of its own, and the request
/// then decodes beside the others with its layers' missing rows hidden, drawing what the single-sequence generator
/// draws with the same pruning.</summary>
public class SchedulerPruningTests
{
    private const string File = "tinystories-656k-f32.gguf";

    private static string Story => System.IO.File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Data", "long-stories.txt"))[..1200];

    private static GenerationOptions Options(PrefillPruningOptions? pruning, int n = 48) => new()
    {
        MaxTokens = n, StopAtEndOfGeneration = false, PrefillPruning = pruning, Sampling = new SamplingOptions { Temperature = 0 },
    };

    private static List<int> Reference(string prompt, GenerationOptions o)
    {
        var m = ModelCache.Get(File);
        using var state = m.Model.CreateState(512, 512);
        return new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode(prompt, true), o)
            .Where(t => t.Token >= 0).Select(t => t.Token).ToList();
    }

    [Test]
    public async Task Pruned_requests_beside_plain_ones_draw_what_the_generator_draws()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 512, MaxSequences = 6, MaxTokensPerStep = 512 });
        var lazy = new PrefillPruningOptions { Method = PruningMethod.LazyLlm, Keep = 0.5 };
        var spatten = new PrefillPruningOptions { Method = PruningMethod.SpAtten, Keep = 0.3 };
        var plain = e.CompleteAsync("Once upon a time", Options(null, 80));
        var a = e.CompleteAsync(Story, Options(lazy));
        var b = e.CompleteAsync(Story[200..], Options(spatten));
        var c = e.CompleteAsync("The little dog", Options(null, 80));
        Assert.That((await a).TokenIds, Is.EqualTo(Reference(Story, Options(lazy))), "lazyllm");
        Assert.That((await b).TokenIds, Is.EqualTo(Reference(Story[200..], Options(spatten))), "spatten");
        Assert.That((await plain).TokenIds, Is.EqualTo(Reference("Once upon a time", Options(null, 80))));
        Assert.That((await c).TokenIds, Is.EqualTo(Reference("The little dog", Options(null, 80))));
        Assert.That((await a).TokenIds, Is.Not.EqualTo(Reference(Story, Options(null))), "pruning changed what the model saw");
        Assert.That(e.KvBlocksInUse, Is.Zero);
    }

    [Test]
    public async Task A_pruned_prompt_longer_than_a_step_is_refused_by_name()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 512, MaxTokensPerStep = 64 });
        var ex = Assert.ThrowsAsync<ArgumentException>(() => e.CompleteAsync(Story, Options(new PrefillPruningOptions())));
        Assert.That(ex!.Message, Does.Contain("prefill_pruning: a pruned prompt runs as one step"));
    }
}
