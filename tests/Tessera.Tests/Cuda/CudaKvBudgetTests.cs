using NUnit.Framework;
using Tessera.Generation;
using Tessera.Kv;
using Tessera.Model;
using Tessera.Pruning;
using Tessera.Sampling;

namespace Tessera.Tests.Cuda;

/// <summary>KV budgets and prompt pruning on the CUDA backend (a GPU or the CUDA emulator; Ignored without either),
/// against the CPU: the attention scores come from kernels/attention_scores.cu, compaction from kv_copy, a pruned
/// prompt's hidden rows from flash attention's tiles. The kept positions must be the CPU's exactly (the sums differ
/// by float rounding only, far below the gaps between ranked positions), and greedy tokens agree while no two
/// candidates are within the backends' rounding of each other.</summary>
[Category("Cuda")]  // run a second time on the CUDA emulator by ./build.sh test
public class CudaKvBudgetTests
{
    private static string Text => File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Data", "long-stories.txt"));

    private static List<int> Greedy(LoadedModel m, IReadOnlyList<int> prompt, int tokens, KvBudgetOptions? budget = null, PrefillPruningOptions? pruning = null)
    {
        using var state = m.Model.CreateState(budget is null ? 512 : 64, 512);
        var o = new GenerationOptions
        {
            MaxTokens = tokens, StopAtEndOfGeneration = false, KvBudget = budget, PrefillPruning = pruning,
            Sampling = new SamplingOptions { Temperature = 0 },
        };
        return new TextGenerator(m.Model, m.Tokenizer).Generate(state, prompt, o).Where(t => t.Token >= 0).Select(t => t.Token).ToList();
    }

    private static int Agreeing(List<int> want, List<int> got)
    {
        int same = 0;
        while (same < want.Count && same < got.Count && got[same] == want[same]) same++;
        return same;
    }

    [TestCase(KvPolicy.Window)]
    [TestCase(KvPolicy.H2O)]
    [TestCase(KvPolicy.Keyformer)]
    [TestCase(KvPolicy.SnapKv)]
    public void A_budget_gives_the_cpus_tokens_past_the_cache(KvPolicy policy)
    {
        var b = CudaDevice.Require();
        using var gpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"), b);
        using var cpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"));
        var budget = new KvBudgetOptions { Budget = 20, Policy = policy };
        var prompt = cpu.Tokenizer.Encode("Once upon a time", true);
        var want = Greedy(cpu, prompt, 90, budget);
        Assert.That(want, Has.Count.EqualTo(90), "past the 64-row cache");
        int same = Agreeing(want, Greedy(gpu, prompt, 90, budget));
        Assert.That(same, Is.GreaterThanOrEqualTo(40), $"tokens agree for {same} of 90");
    }

    [TestCase(KvPolicy.H2O)]
    [TestCase(KvPolicy.Keyformer)]
    public void Decode_steps_under_a_budget_keep_the_cpus_positions_at_every_step(KvPolicy policy)
    {
        // Teacher-forced: both backends take the CPU's greedy tokens, so a difference in what the decode rows' scores
        // rank shows as a difference in the kept positions at that step (the window policy would pass blind).
        var b = CudaDevice.Require();
        using var gpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"), b);
        using var cpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"));
        var budget = new KvBudgetOptions { Budget = 20, Policy = policy };
        var prompt = cpu.Tokenizer.Encode("Once upon a time", true).ToArray();
        var tokens = Greedy(cpu, prompt, 70, budget);
        using var cs = cpu.Model.CreateState(64, 512);
        using var gs = gpu.Model.CreateState(64, 512);
        cs.UseKvBudget(budget);
        gs.UseKvBudget(budget);
        static int[] Kept(Tessera.Model.RunState s) => [.. s.KvPolicy!.Positions.AsSpan(0, s.Cached).ToArray().Order()];
        cpu.Model.Forward(cs, prompt);
        gpu.Model.Forward(gs, prompt);
        int compressed = 0;
        for (int i = 0; i < tokens.Count - 1; i++)
        {
            cpu.Model.Forward(cs, [tokens[i]]);
            gpu.Model.Forward(gs, [tokens[i]]);
            var want = Kept(cs);
            Assert.That(Kept(gs), Is.EqualTo(want), $"kept positions after token {i}");
            if (want[^1] - want[0] + 1 > want.Length) compressed++;
        }
        Assert.That(compressed, Is.GreaterThan(40), "most steps ran with positions dropped");
    }

    [TestCase(KvPolicy.H2O)]
    [TestCase(KvPolicy.Keyformer)]
    [TestCase(KvPolicy.SnapKv)]
    public void A_long_prompt_under_a_budget_keeps_the_cpus_positions(KvPolicy policy)
    {
        var b = CudaDevice.Require();
        using var gpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"), b);
        using var cpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"));
        var prompt = cpu.Tokenizer.Encode(Text[..1200], true).ToArray();
        Assert.That(prompt.Length, Is.GreaterThan(200), "the prompt passes the budget several times over");
        int[] Kept(LoadedModel m)
        {
            using var state = m.Model.CreateState(320, 512);   // budget − 1 + one 256-position prompt chunk
            state.UseKvBudget(new KvBudgetOptions { Budget = 48, Policy = policy });
            m.Model.Forward(state, prompt);
            return [.. state.KvPolicy!.Positions.AsSpan(0, state.Cached).ToArray().Order()];
        }
        var want = Kept(cpu);
        Assert.That(want, Has.Length.EqualTo(47), "budget − 1 rows wait for the next token");
        Assert.That(Kept(gpu), Is.EqualTo(want));
    }

    [TestCase(PruningMethod.LazyLlm)]
    [TestCase(PruningMethod.SpAtten)]
    public void A_pruned_prompt_keeps_the_cpus_tokens(PruningMethod method)
    {
        var b = CudaDevice.Require();
        using var gpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"), b);
        using var cpu = LoadedModel.Load(SharedData.Model("tinystories-656k-f32.gguf"));
        var prompt = cpu.Tokenizer.Encode(Text[..900], true).ToArray();
        var o = new PrefillPruningOptions { Method = method, Keep = 0.5 };
        int[] Kept(LoadedModel m)
        {
            using var state = m.Model.CreateState(512, 512);
            state.UsePrefillPruning(o);
            m.Model.Forward(state, prompt);
            return state.Pruning!.KeptIndices.ToArray();
        }
        var want = Kept(cpu);
        Assert.That(want, Has.Length.EqualTo((int)Math.Round(0.5 * prompt.Length)));
        Assert.That(Kept(gpu), Is.EqualTo(want));
        // Decoding after it reads the hidden rows' layout in every layer (no decode graph).
        var wantTokens = Greedy(cpu, prompt, 32, pruning: o);
        Assert.That(wantTokens, Is.Not.EqualTo(Greedy(cpu, prompt, 32)), "the pruning changes what the model says");
        int same = Agreeing(wantTokens, Greedy(gpu, prompt, 32, pruning: o));
        Assert.That(same, Is.GreaterThanOrEqualTo(16), $"tokens agree for {same} of 32");
    }
}
