using NUnit.Framework;
using Tessera.Backends;
using Tessera.Backends.Cpu;
using Tessera.Evaluation;
using Tessera.Generation;
using Tessera.Model;
using Tessera.Pruning;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Pruning;

/// <summary>Prompt pruning: keep 1 changes no bit; a pruned prompt keeps the share of rows its schedule says, its
/// last token among them; attention skips a layer's missing rows exactly as if they were not cached; bad options are
/// refused by name.</summary>
[NonParallelizable] // flips CpuAttention.VectorizedRows
public class PrefillPruningTests
{
    private static string Text => File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Data", "long-stories.txt"));

    [TestCase(PruningMethod.LazyLlm)]
    [TestCase(PruningMethod.SpAtten)]
    public void Keep_one_gives_the_same_perplexity_and_tokens_to_the_bit(PruningMethod method)
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var full = Perplexity.Compute(m, Text, 256, scoreLast: 32);
        var kept = Perplexity.Compute(m, Text, 256, pruning: new PrefillPruningOptions { Method = method, Keep = 1 }, scoreLast: 32);
        Assert.That(kept.ChunkValues, Is.EqualTo(full.ChunkValues));
        var pruned = Perplexity.Compute(m, Text, 256, pruning: new PrefillPruningOptions { Method = method, Keep = 0.5 }, scoreLast: 32);
        Assert.That(pruned.Value, Is.Not.EqualTo(full.Value), "keep 0.5 prunes tokens the continuation would see");

        var prompt = m.Tokenizer.Encode(Text[..900], true);
        Assert.That(Generate(m, prompt, new PrefillPruningOptions { Method = method, Keep = 1 }).Tokens, Is.EqualTo(Generate(m, prompt, null).Tokens));
    }

    [Test]
    public void A_pruned_prompt_keeps_its_schedules_share_and_its_last_token()
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var prompt = m.Tokenizer.Encode(Text[..1500], true).ToArray();
        var o = new PrefillPruningOptions { Keep = 0.3 };
        Assert.That(o.Schedule(m.Config.Layers), Is.EqualTo(new[] { (1, 0.3) }), "a 2-layer model prunes once, before its second layer");
        Assert.That(o.Schedule(16).Select(s => s.Layer), Is.EqualTo(new[] { 4, 8, 12 }));
        Assert.That(o.Schedule(16).Select(s => s.Keep), Is.EqualTo(new[] { 0.3, Math.Pow(0.3, 1.5), 0.09 }).Within(1e-12));
        using var state = m.Model.CreateState(512, 512);
        state.UsePrefillPruning(o);
        m.Model.Forward(state, prompt);
        var p = state.Pruning!;
        Assert.That(p.PromptRows, Is.EqualTo(prompt.Length));
        Assert.That(p.KeptRows, Is.EqualTo((int)Math.Round(0.3 * prompt.Length)));
        Assert.That(p.ComputedShare, Is.EqualTo((prompt.Length + p.KeptRows) / (2.0 * prompt.Length)).Within(1e-12));
        Assert.That(state.Cached, Is.EqualTo(prompt.Length), "every prompt row has its first layer's keys and values");

        // LazyLLM ranks by the attention the last token gave each token in layer 0: the same model without its layer 1,
        // scored on a plain prompt step, gives those sums. The kept set is their top 30% (ties to the earlier
        // token), the last token always among them.
        using var layer0 = m.Model.SkipLayers([1]);
        using var probe = layer0.CreateState(512, 512);
        probe.Batched.Scores = new AttentionScores();
        probe.Batched.Scores.Request(0, prompt.Length - 1);
        layer0.Forward(probe, prompt);
        var rank = probe.Batched.Scores.Of(0).ToArray();
        rank[^1] = float.PositiveInfinity;
        var want = new int[p.KeptRows];
        Tessera.Kv.TopK.Select(rank, want.Length, want);
        Assert.That(p.KeptIndices.ToArray(), Is.EqualTo(want));
        Assert.That(p.KeptIndices[^1], Is.EqualTo(prompt.Length - 1));
    }

    [Test]
    public void SpAtten_keeps_the_tokens_with_the_most_attention_per_query_that_sees_them()
    {
        // Layer 0's sums over every query of the prompt (the same model without layer 1, every row scored), each
        // divided by the n − i queries that see token i: the kept set is their top 50%, the last token always in.
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        var prompt = m.Tokenizer.Encode(Text[..1500], true).ToArray();
        int n = prompt.Length;
        using var state = m.Model.CreateState(512, 512);
        state.UsePrefillPruning(new PrefillPruningOptions { Method = PruningMethod.SpAtten, Keep = 0.5 });
        m.Model.Forward(state, prompt);
        using var layer0 = m.Model.SkipLayers([1]);
        using var probe = layer0.CreateState(512, 512);
        probe.Batched.Scores = new AttentionScores();
        probe.Batched.Scores.Request(0, 0);
        layer0.Forward(probe, prompt);
        var rank = probe.Batched.Scores.Of(0).ToArray();
        for (int i = 0; i < n; i++) rank[i] /= n - i;
        rank[^1] = float.PositiveInfinity;
        var want = new int[state.Pruning!.KeptRows];
        Tessera.Kv.TopK.Select(rank, want.Length, want);
        Assert.That(state.Pruning.KeptIndices.ToArray(), Is.EqualTo(want));
        // A plain sum would keep the early tokens: the mean keeps recent ones too.
        Assert.That(want.Count(i => i >= n / 2), Is.GreaterThan(want.Length / 4));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Hidden_rows_are_attended_to_exactly_as_rows_that_are_not_there(bool vectorized)
    {
        // A decode row over 40 cached rows with rows 10..24 hidden, against the same row over a cache holding only the
        // other 25 rows, in the same order: softmax weights of exactly 0 add nothing.
        var c = new LlamaConfig
        {
            Architecture = "llama", VocabSize = 8, Dim = 4 * 64, FfnDim = 8, Layers = 1, Heads = 4, KvHeads = 2, HeadDim = 64,
            NormEps = 1e-5f, RopeTheta = 10000, RopeLayout = RopeLayout.AdjacentPairs, ContextLength = 512, TiedEmbeddings = true,
        };
        var rng = new Random(4);
        var q = Enumerable.Range(0, c.QDim).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        int slots = 64;
        var k = Enumerable.Range(0, slots * c.KvDim).Select(_ => (Half)(rng.NextDouble() * 2 - 1)).ToArray();
        var v = Enumerable.Range(0, slots * c.KvDim).Select(_ => (Half)(rng.NextDouble() * 2 - 1)).ToArray();
        var batch = new RaggedBatch(4, 1, 4, 16);
        batch.Add([0], 40, [0, 1, 2]);
        batch.HiddenStart[0] = 10;
        batch.HiddenEnd[0] = 25;
        var keptRows = Enumerable.Range(0, 41).Where(p => p is < 10 or >= 25).ToArray();
        var k2 = new Half[slots * c.KvDim];
        var v2 = new Half[slots * c.KvDim];
        for (int i = 0; i < keptRows.Length; i++)
        {
            k.AsSpan(keptRows[i] * c.KvDim, c.KvDim).CopyTo(k2.AsSpan(i * c.KvDim));
            v.AsSpan(keptRows[i] * c.KvDim, c.KvDim).CopyTo(v2.AsSpan(i * c.KvDim));
        }
        var compact = new RaggedBatch(4, 1, 4, 16);
        compact.Add([0], keptRows.Length - 1, [0, 1, 2]);
        bool was = CpuAttention.VectorizedRows;
        CpuAttention.VectorizedRows = vectorized;
        try
        {
            var a = new float[c.QDim];
            var b = new float[c.QDim];
            CpuAttention.Compute(q, k, v, c, batch, a);
            CpuAttention.Compute(q, k2, v2, c, compact, b);
            // The same weights over the same values, in the same order: equal up to the sums' order of the tiles.
            for (int i = 0; i < a.Length; i++) Assert.That(a[i], Is.EqualTo(b[i]).Within(1e-5), $"output {i}");
        }
        finally { CpuAttention.VectorizedRows = was; }
    }

    [Test]
    public void Bad_options_are_refused_by_name()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => new PrefillPruningOptions { Keep = 0 }.Validate())!.Message, Does.Contain("--keep 0: must be in (0, 1]"));
        Assert.That(Assert.Throws<ArgumentException>(() => new PrefillPruningOptions { Keep = 1.5 }.Validate())!.Message, Does.Contain("--keep 1.5: must be in (0, 1]"));
        Assert.That(Assert.Throws<ArgumentException>(() => PrefillPruningOptions.ParseMethod("h2o"))!.Message, Does.Contain("--prefill-pruning 'h2o': unknown (lazyllm, spatten)"));
        var e = Assert.Throws<ArgumentException>(() => new GenerationOptions
        {
            PrefillPruning = new PrefillPruningOptions(), KvBudget = new Tessera.Kv.KvBudgetOptions { Budget = 64 },
        }.Validate());
        Assert.That(e!.Message, Does.Contain("--prefill-pruning: not together with --kv-budget"));
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        Assert.That(Assert.Throws<ArgumentException>(() => Perplexity.Compute(m, Text, 256, pruning: new PrefillPruningOptions()))!.Message,
            Does.Contain("give --score-last N"));
    }

    private static (List<int> Tokens, GenerationStats Stats) Generate(LoadedModel m, IReadOnlyList<int> prompt, PrefillPruningOptions? pruning)
    {
        using var state = m.Model.CreateState(512, 512);
        var stats = new GenerationStats();
        var options = new GenerationOptions
        {
            MaxTokens = 32, StopAtEndOfGeneration = false, PrefillPruning = pruning, Sampling = new SamplingOptions { Temperature = 0 },
        };
        var tokens = new TextGenerator(m.Model, m.Tokenizer).Generate(state, prompt, options, stats).Where(t => t.Token >= 0).Select(t => t.Token).ToList();
        return (tokens, stats);
    }
}
