using NUnit.Framework;
using Tessera.Generation;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Speculation;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Generation;

/// <summary>DySpec's dynamic draft trees (<c>--tree dynamic</c>): the tree the draft grows, and lossless output.</summary>
public class DynamicTreeTests
{
    private static string Story => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "story.txt"));

    private static (List<int> Tokens, GenerationStats Stats) Run(LoadedModel m, IReadOnlyList<int> prompt, GenerationOptions o)
    {
        using var state = m.Model.CreateState(512);
        var stats = new GenerationStats();
        var ids = new List<int>();
        foreach (var step in new TextGenerator(m.Model, m.Tokenizer).Generate(state, prompt, o, stats))
            if (step.Token >= 0) ids.Add(step.Token);
        return (ids, stats);
    }

    [TestCase(1.0f)]
    [TestCase(0f)]
    public void A_small_tree_is_the_exact_best_first_tree_of_the_drafts_path_probabilities(float temperature)
    {
        // Up to 15 rows a pass takes one node: the tree must be exactly what best-first search over path
        // probabilities gives, computed here independently with plain forward passes over each node's path.
        var d = ModelCache.Get("tinystories-656k-q4_0.gguf");
        int vocab = d.Config.VocabSize;
        var prompt = d.Tokenizer.Encode(Story, true).Take(40).ToList();
        const int rows = 12;
        float t = temperature > 0 ? temperature : 0.25f;
        using var proposer = new DraftModelProposer(d.Model, 512, DraftTreeShape.Dynamic, rows, temperature);
        proposer.Begin(prompt.ToArray());
        var tree = new DraftTree(rows);
        tree.Reset(prompt[^1], rows);
        proposer.Propose(prompt.ToArray(), tree);

        // The reference: nodes as token paths below the root, candidates with their log path probability.
        var logits = new float[vocab];
        using var state = d.Model.CreateState(128);
        List<(List<int> Path, double Score)> taken = [([], 0)], candidates = [];
        void Expand(List<int> path, double score)
        {
            state.Rewind(0);
            d.Model.Forward(state, [.. prompt, .. path]);
            double max = state.Logits.Max(), sum = state.Logits.Sum(x => Math.Exp((x - max) / t));
            foreach (int c in Enumerable.Range(0, vocab).OrderByDescending(i => state.Logits[i]).ThenBy(i => i).Take(DynamicTreeGrower.ChildrenPerNode))
                candidates.Add(([.. path, c], score + (state.Logits[c] - max) / t - Math.Log(sum)));
        }
        Expand([], 0);
        while (taken.Count < rows)
        {
            var best = candidates.MaxBy(c => c.Score);
            candidates.Remove(best);
            taken.Add(best);
            Expand(best.Path, best.Score);
        }

        Assert.That(tree.Count, Is.EqualTo(rows));
        for (int r = 0; r < rows; r++)
        {
            var path = new List<int>();
            for (int a = r; a > 0; a = tree.Parents[a]) path.Insert(0, tree.Tokens[a]);
            Assert.That(path, Is.EqualTo(taken[r].Path), $"row {r}");
        }
        Assert.That(taken.Skip(1).Select(p => p.Path.Count).Distinct().Count(), Is.GreaterThan(1), "more than one level");
        if (temperature > 0)  // sharpened for greedy, this prompt's tree is a chain; at temperature 1 it branches
            Assert.That(taken.Skip(1).Select(p => p.Path[0]).Distinct().Count(), Is.GreaterThan(1), "a tree, not a chain");
    }

    [TestCase("f32", "q4_0")]
    [TestCase("q8_0", "q4_k_m")]
    public void Greedy_dynamic_trees_give_the_plain_tokens(string target, string drafter)
    {
        var m = ModelCache.Get($"tinystories-656k-{target}.gguf");
        var d = ModelCache.Get($"tinystories-656k-{drafter}.gguf");
        var prompt = m.Tokenizer.Encode(Story, true).Take(96).ToList();
        var plain = new GenerationOptions { MaxTokens = 128, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        var a = Run(m, prompt, plain);
        foreach (var spec in new SpeculationOptions[]
        {
            new() { Method = SpeculationMethod.Draft, DraftModel = d.Model, Tree = DraftTreeShape.Dynamic, Adaptive = false },
            new() { Method = SpeculationMethod.Draft, DraftModel = d.Model, Tree = DraftTreeShape.Dynamic },
            new() { Method = SpeculationMethod.Self, SkipLayers = 1, Tree = DraftTreeShape.Dynamic, Adaptive = false, DraftMax = 20 },
        })
        {
            var b = Run(m, prompt, plain with { Speculation = spec });
            Assert.That(b.Tokens, Is.EqualTo(a.Tokens), $"{spec.Method}, adaptive {spec.Adaptive}");
            if (!spec.Adaptive) Assert.That(b.Stats.Speculation!.AcceptedTokens, Is.GreaterThan(0));
        }
    }

    [Test]
    public void Seeded_sampling_with_dynamic_trees_draws_the_plain_tokens()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        var d = ModelCache.Get("tinystories-656k-q4_0.gguf");
        var prompt = m.Tokenizer.Encode(Story, true).Take(64).ToList();
        int accepted = 0;
        for (ulong seed = 1; seed <= 20; seed++)
        {
            var o = new GenerationOptions
            {
                MaxTokens = 48, StopAtEndOfGeneration = false,
                Sampling = new SamplingOptions { Temperature = 0.9f, TopP = 0.95f, TopK = 0, MinP = 0, Seed = seed },
            };
            var a = Run(m, prompt, o);
            var b = Run(m, prompt, o with { Speculation = new SpeculationOptions { Method = SpeculationMethod.Draft, DraftModel = d.Model, Tree = DraftTreeShape.Dynamic, Adaptive = false } });
            Assert.That(b.Tokens, Is.EqualTo(a.Tokens), $"seed {seed}");
            accepted += b.Stats.Speculation!.AcceptedTokens;
        }
        Assert.That(accepted, Is.GreaterThan(100), "drafts were accepted");
    }

    [Test]
    public void A_dynamic_tree_without_a_draft_model_is_refused_by_name()
    {
        foreach (var method in new[] { SpeculationMethod.Lookup, SpeculationMethod.Recycle })
            Assert.That(() => new SpeculationOptions { Method = method, Tree = DraftTreeShape.Dynamic }.Validate(),
                Throws.ArgumentException.With.Message.Contains("--tree dynamic"));
        Assert.That(() => SpeculationOptions.ParseTree("bushy"), Throws.ArgumentException.With.Message.Contains("--tree bushy"));
        Assert.That(new SpeculationOptions { Method = SpeculationMethod.Self, Tree = DraftTreeShape.Dynamic }.DraftLimit, Is.EqualTo(SpeculationOptions.DynamicTreeDefault));
    }
}
