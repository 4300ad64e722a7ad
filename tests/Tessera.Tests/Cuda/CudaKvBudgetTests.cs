using NUnit.Framework;
using Tessera.Generation;
using Tessera.Kv;
using Tessera.Model;
using Tessera.Sampling;

namespace Tessera.Tests.Cuda;

/// <summary>KV budgets on the CUDA backend (a GPU or the CUDA emulator; Ignored without either): the window policy
/// needs no attention scores, so it runs there (compaction by the kv_copy kernel, RoPE positions past the cached
/// rows) and keeps the CPU's greedy tokens; policies that rank by attention, and prompt pruning, are refused by name.</summary>
[Category("Cuda")]  // run a second time on the CUDA emulator by ./build.sh test
public class CudaKvBudgetTests
{
    private static List<int> Greedy(LoadedModel m, KvBudgetOptions budget)
    {
        using var state = m.Model.CreateState(64);
        var o = new GenerationOptions { MaxTokens = 90, StopAtEndOfGeneration = false, KvBudget = budget, Sampling = new SamplingOptions { Temperature = 0 } };
        return new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode("Once upon a time", true), o)
            .Where(t => t.Token >= 0).Select(t => t.Token).ToList();
    }

    [Test]
    public void A_window_budget_gives_the_cpus_tokens_past_the_cache()
    {
        var b = CudaDevice.Require();
        using var gpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"), b);
        using var cpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"));
        var budget = new KvBudgetOptions { Budget = 20, Policy = KvPolicy.Window };
        var want = Greedy(cpu, budget);
        Assert.That(want, Has.Count.EqualTo(90), "past the 64-row cache");
        // Greedy tokens agree while no two candidates are within the backends' rounding of each other.
        var got = Greedy(gpu, budget);
        int same = 0;
        while (same < want.Count && got[same] == want[same]) same++;
        Assert.That(same, Is.GreaterThanOrEqualTo(40), $"tokens agree for {same} of 90");
    }

    [Test]
    public void Ranking_policies_and_pruning_are_refused_by_name()
    {
        var b = CudaDevice.Require();
        using var gpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"), b);
        using var state = gpu.Model.CreateState(64);
        var e = Assert.Throws<ArgumentException>(() => state.UseKvBudget(new KvBudgetOptions { Budget = 20, Policy = KvPolicy.H2O }));
        Assert.That(e!.Message, Does.Contain("--kv-policy h2o ranks positions by attention, which the cuda backend does not compute"));
        e = Assert.Throws<ArgumentException>(() => state.UsePrefillPruning(new Tessera.Pruning.PrefillPruningOptions()));
        Assert.That(e!.Message, Does.Contain("--prefill-pruning ranks the prompt's tokens by attention, which the cuda backend does not compute"));
    }
}
