using NUnit.Framework;
using Tessera.Generation;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Speculation;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Generation;

/// <summary>Speculative decoding is lossless: the same tokens as decoding one token per pass, greedy and seeded.</summary>
public class SpeculationTests
{
    private static string Story => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "story.txt"));

    /// <summary>Guesses random tokens: nearly every draft is rejected, so rejected rows' keys and values are written
    /// at every pass. Any of them leaking into later attention changes the output.</summary>
    private sealed class RandomProposer(int vocab, int seed) : IDraftProposer
    {
        private readonly Random _rng = new(seed);
        public long StateBytes => 0;
        public void Propose(ReadOnlySpan<int> context, DraftTree tree)
        {
            while (!tree.IsFull) tree.Add(_rng.Next(tree.Count), _rng.Next(vocab));  // random parents: a bushy tree
        }
    }

    /// <summary>Proposes the tokens a run without speculation produced, each with a wrong one at every third step,
    /// so passes are partly accepted, partly rejected.</summary>
    private sealed class ScriptProposer(IReadOnlyList<int> prompt, IReadOnlyList<int> truth) : IDraftProposer
    {
        public long StateBytes => 0;
        public void Propose(ReadOnlySpan<int> context, DraftTree tree)
        {
            int at = context.Length - prompt.Count;   // generated tokens so far
            Span<int> draft = stackalloc int[tree.Limit - 1];
            int n = 0;
            for (; n < draft.Length && at + n < truth.Count; n++)
                draft[n] = (at + n) % 3 == 2 ? (truth[at + n] + 1) % 512 : truth[at + n];
            tree.AddChain(draft[..n]);
        }
    }

    private static (List<int> Tokens, GenerationStats Stats, int Position) Run(LoadedModel m, IReadOnlyList<int> prompt, GenerationOptions o, int context = 512)
    {
        using var state = m.Model.CreateState(context);
        var stats = new GenerationStats();
        var ids = new List<int>();
        foreach (var step in new TextGenerator(m.Model, m.Tokenizer).Generate(state, prompt, o, stats))
            if (step.Token >= 0) ids.Add(step.Token);
        return (ids, stats, state.Position);
    }

    private static IReadOnlyList<int> StoryPrompt(LoadedModel m, int tokens = 96) =>
        m.Tokenizer.Encode(Story, true).Take(tokens).ToList();

    private static readonly string[] TinyStories =
        ["f32", "f16", "bf16", "q8_0", "q6_k", "q5_1", "q5_0", "q4_k_m", "q4_1", "q4_0"];

    private static readonly string[] RandomWeights =
        ["f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_1", "q5_0", "q4_k_m", "q4_1", "q4_0", "q3_k_m", "q2_k", "iq4_nl"];

    /// <summary>Sliding-window layers (Gemma, windows of 8 at the small shapes): a draft tree's rows see the window
    /// along their paths, so verification must give the plain tokens past the window; random bushy trees (nearly all
    /// rejected) and Token Recycling's trees.</summary>
    [TestCase("gemma2-small")]
    [TestCase("gemma3-small")]
    public void Greedy_speculation_gives_the_plain_tokens_with_sliding_windows(string shape)
    {
        string path = Path.Combine(Path.GetTempPath(), $"tessera-spec-{shape}-{Environment.ProcessId}.gguf");
        using (var tok = Tessera.Formats.Gguf.GgufFile.Open(SharedData.Path("models", "tinystories-656k-f32.gguf")))
            new Tessera.Synthesis.ModelSynthesizer(Tessera.Synthesis.ShapeCatalog.Get(shape), Tessera.Synthesis.SynthType.F32, seed: 9).WriteFile(path, tok);
        try
        {
            using var m = LoadedModel.Load(path);
            var prompt = StoryPrompt(m, 40);
            var plain = new GenerationOptions { MaxTokens = 48, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
            var a = Run(m, prompt, plain);
            var random = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 12, ProposerFactory = () => new RandomProposer(m.Config.VocabSize, 3) } });
            Assert.That(random.Tokens, Is.EqualTo(a.Tokens), "random trees");
            var recycle = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Method = SpeculationMethod.Recycle, Adaptive = false } });
            Assert.That(recycle.Tokens, Is.EqualTo(a.Tokens), "token recycling trees");
            Assert.That(recycle.Stats.Speculation!.AcceptedTokens, Is.GreaterThan(0), "no tree path was ever accepted");
        }
        finally { File.Delete(path); }
    }

    [TestCaseSource(nameof(TinyStories))]
    public void Greedy_speculation_gives_the_plain_tokens_on_tinystories(string type)
    {
        var m = ModelCache.Get($"tinystories-656k-{type}.gguf");
        var prompt = StoryPrompt(m);
        var plain = new GenerationOptions { MaxTokens = 128, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        var spec = plain with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 8 } };
        var a = Run(m, prompt, plain);
        var b = Run(m, prompt, spec);
        Assert.That(b.Tokens, Is.EqualTo(a.Tokens));
        Assert.That(b.Position, Is.EqualTo(a.Position), "positions left cached");
        var adaptive = Run(m, prompt, plain with { Speculation = new SpeculationOptions() });
        Assert.That(adaptive.Tokens, Is.EqualTo(a.Tokens), "cost-sized drafts");
        Assert.That(b.Stats.Speculation!.DraftedTokens, Is.GreaterThan(0), "the proposer never drafted: nothing was verified");
        var recycle = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Method = SpeculationMethod.Recycle, Adaptive = false } });
        Assert.That(recycle.Tokens, Is.EqualTo(a.Tokens), "token recycling trees");
        Assert.That(recycle.Position, Is.EqualTo(a.Position));
        Assert.That(recycle.Stats.Speculation!.AcceptedTokens, Is.GreaterThan(0), "no recycled guess was ever accepted");
        var recycleAdaptive = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Method = SpeculationMethod.Recycle } });
        Assert.That(recycleAdaptive.Tokens, Is.EqualTo(a.Tokens), "token recycling, cost-sized trees");
    }

    [TestCase("tinystories-656k-f32.gguf")]
    [TestCase("rand-llama-d256-q4_k_m.gguf")]
    [TestCase("rand-llama-d256-f16.gguf")]
    public void A_tree_rows_logits_are_the_plain_logits_of_its_path_bit_for_bit(string file)
    {
        // Every row of a verified tree must compute exactly what plain decoding along its path computes: that is
        // what makes acceptance lossless. A 40-node random tree of depth 7 after a 37-token prefix (the prefix and
        // the tree span blocks), compared with a fresh sequential run of each path, and the path moved into place
        // by Accept continuing exactly as plain decoding continues.
        var m = ModelCache.Get(file);
        int vocab = m.Config.VocabSize;
        var rng = new Random(3);
        int[] prefix = [.. Enumerable.Range(0, 37).Select(_ => rng.Next(vocab))];
        int[] parents = Tessera.Backends.OpSuite.OpCases.RandomTree(40, 7, 11);
        int[] tokens = [.. parents.Select(_ => rng.Next(vocab))];
        using var s = m.Model.CreateState(128);
        m.Model.Forward(s, prefix);
        var rows = new float[tokens.Length * vocab];
        m.Model.ForwardTree(s, tokens, parents, rows);
        using var plain = m.Model.CreateState(128);
        var all = new float[8 * vocab];
        for (int r = 0; r < tokens.Length; r++)
        {
            var path = new List<int>();
            for (int a = r; a >= 0; a = parents[a]) path.Insert(0, a);
            plain.Rewind(0);
            m.Model.Forward(plain, prefix);
            var pathTokens = path.Select(i => tokens[i]).ToArray();
            m.Model.Forward(plain, pathTokens, all.AsSpan(0, pathTokens.Length * vocab));
            Assert.That(rows.AsSpan(r * vocab, vocab).ToArray(), Is.EqualTo(all.AsSpan((pathTokens.Length - 1) * vocab, vocab).ToArray()), $"tree row {r}");
        }
        // Keep the deepest path, then one more token: the same logits as the plain run of prefix + path + token.
        int leaf = Enumerable.Range(0, tokens.Length).MaxBy(r => { int d = 0; for (int a = r; a > 0; a = parents[a]) d++; return d; });
        var keep = new List<int>();
        for (int a = leaf; a >= 0; a = parents[a]) keep.Insert(0, a);
        s.Accept(keep.ToArray());
        Assert.That(s.Position, Is.EqualTo(prefix.Length + keep.Count));
        m.Model.Forward(s, [5]);
        plain.Rewind(0);
        m.Model.Forward(plain, [.. prefix, .. keep.Select(i => tokens[i]), 5]);
        Assert.That(s.Logits, Is.EqualTo(plain.Logits), "after the accepted path was compacted");
    }

    [TestCase("f32", "q4_0")]
    [TestCase("q8_0", "q4_k_m")]
    [TestCase("f16", "f16")]
    public void Greedy_draft_model_gives_the_plain_tokens(string target, string drafter)
    {
        var m = ModelCache.Get($"tinystories-656k-{target}.gguf");
        var d = ModelCache.Get($"tinystories-656k-{drafter}.gguf");
        var prompt = StoryPrompt(m);
        var plain = new GenerationOptions { MaxTokens = 128, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        var a = Run(m, prompt, plain);
        foreach (bool adaptive in new[] { false, true })
        {
            var b = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Method = SpeculationMethod.Draft, DraftModel = d.Model, Adaptive = adaptive } });
            Assert.That(b.Tokens, Is.EqualTo(a.Tokens), $"adaptive {adaptive}");
            Assert.That(b.Position, Is.EqualTo(a.Position));
            if (!adaptive) Assert.That(b.Stats.Speculation!.TokensPerStep, Is.GreaterThan(2), "a draft of the same model should mostly agree");
        }
    }

    [TestCase("tinystories-656k-f32.gguf")]
    [TestCase("tinystories-656k-q4_k_m.gguf")]
    [TestCase("rand-llama-d256-q8_0.gguf")]
    public void Greedy_self_speculation_gives_the_plain_tokens(string file)
    {
        var m = ModelCache.Get(file);
        var prompt = StoryPrompt(m);
        var plain = new GenerationOptions { MaxTokens = 128, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        var a = Run(m, prompt, plain);
        var b = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Method = SpeculationMethod.Self, SkipLayers = 1, Adaptive = false } });
        Assert.That(b.Tokens, Is.EqualTo(a.Tokens));
        Assert.That(b.Position, Is.EqualTo(a.Position));
        Assert.That(b.Stats.Speculation!.Method, Is.EqualTo("self"));
        Assert.That(b.Stats.Speculation.AcceptedTokens, Is.GreaterThan(0));
        Assert.That(b.Stats.Speculation.ProposerBytes, Is.GreaterThan(0), "the draft's own cache");
    }

    [Test]
    public void Self_speculation_calibrates_a_window_that_keeps_the_first_layer()
    {
        var m = ModelCache.Get("rand-llama-d256-f32.gguf");   // 4 layers: windows of one at layers 1, 2, 3
        int layers = m.Config.Layers;
        var p = new SelfSpeculativeProposer(m.Model, 256, 1);
        var tree = new DraftTree(9);
        tree.Reset(0, 9);
        int[] context = [1, 17, 300, 42, 9, 250, 17, 300, 42, 9, 250, 7];
        p.Propose(context, tree);
        Assert.That(p.Skipped, Has.Count.EqualTo(1));
        Assert.That(p.Skipped[0], Is.InRange(1, layers - 1));
        Assert.That(p.CalibrationAgreement, Is.InRange(0.0, 1.0));
        Assert.That(tree.Count, Is.EqualTo(9), "a greedy chain of the full limit");
        Assert.That(() => new SelfSpeculativeProposer(m.Model, 256, layers), Throws.ArgumentException.With.Message.Contains("--skip-layers"));
        // The skipped model shares the weights and differs from the full one.
        var skipped = m.Model.SkipLayers([.. p.Skipped]);
        Assert.That(skipped.SkippedLayers, Is.EqualTo(p.Skipped));
        p.Dispose();
    }

    [Test]
    public void A_draft_model_with_another_vocabulary_is_refused_by_name()
    {
        var target = ModelCache.Get("tinystories-656k-f32.gguf").Tokenizer;
        var other = Tessera.Tokenization.Tokenizer.Load(SharedData.Path("vocab", "ggml-vocab-llama-spm.gguf"));
        Assert.That(() => SpeculationOptions.CheckDraftModel(target, other, "other.gguf"),
            Throws.ArgumentException.With.Message.Contains("--draft-model other.gguf").And.Message.Contains("vocabulary"));
        Assert.That(() => SpeculationOptions.CheckDraftModel(target, ModelCache.Get("tinystories-656k-q4_0.gguf").Tokenizer, "same.gguf"), Throws.Nothing);
        Assert.That(() => new SpeculationOptions { Method = SpeculationMethod.Draft }.Validate(),
            Throws.ArgumentException.With.Message.Contains("--draft-model"));
    }

    [TestCaseSource(nameof(RandomWeights))]
    public void Rejected_rows_never_leak_into_later_attention(string type)
    {
        var m = ModelCache.Get($"rand-llama-d256-{type}.gguf");
        var prompt = new[] { 1, 17, 300, 42, 9, 250 };
        var plain = new GenerationOptions { MaxTokens = 128, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        var a = Run(m, prompt, plain);
        var b = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 6, ProposerFactory = () => new RandomProposer(m.Config.VocabSize, 5) } });
        var c = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 6, ProposerFactory = () => new ScriptProposer(prompt, a.Tokens) } });
        Assert.That(b.Tokens, Is.EqualTo(a.Tokens), "random drafts");
        var rs = b.Stats.Speculation!;
        Assert.That(rs.DraftedTokens, Is.GreaterThanOrEqualTo(6 * (rs.VerifySteps - 6)), "a fixed draft is DraftMax long, whatever was rejected before");
        Assert.That(rs.Method, Is.EqualTo("custom"));
        Assert.That(c.Tokens, Is.EqualTo(a.Tokens), "partly right drafts");
        Assert.That(c.Stats.Speculation!.AcceptedTokens, Is.GreaterThan(20), "the scripted drafts should be accepted in part");
        Assert.That(c.Stats.Speculation.DraftedTokens, Is.GreaterThan(c.Stats.Speculation.AcceptedTokens), "and rejected in part");
        Assert.That(c.Position, Is.EqualTo(a.Position));
        var t = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 20, ProposerFactory = () => new ScriptTreeProposer(prompt, a.Tokens) } });
        Assert.That(t.Tokens, Is.EqualTo(a.Tokens), "trees whose accepted path is moved into place");
        Assert.That(t.Stats.Speculation!.AcceptedTokens, Is.GreaterThan(60), "the right branch should be found");
        Assert.That(t.Position, Is.EqualTo(a.Position));
    }

    [Test]
    public void Seeded_sampling_draws_the_plain_tokens()
    {
        // The acceptance rule draws each row's token with the plain sampler and keeps the next row only when the draw
        // equals the draft, so a seed gives the plain draws exactly. A rule that accepted drafts another way (p/q
        // ratios, or always) would change some of these 40 sequences.
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        var prompt = StoryPrompt(m, 64);
        int accepted = 0;
        for (ulong seed = 1; seed <= 40; seed++)
        {
            var o = new GenerationOptions
            {
                MaxTokens = 48, StopAtEndOfGeneration = false,
                Sampling = new SamplingOptions { Temperature = 1.0f, TopP = 0.9f, TopK = 0, MinP = 0, Seed = seed, RepetitionPenalty = 1.1f },
            };
            var a = Run(m, prompt, o);
            var truth = a.Tokens;
            var b = Run(m, prompt, o with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 5, ProposerFactory = () => new ScriptProposer(prompt, truth) } });
            var c = Run(m, prompt, o with { Speculation = new SpeculationOptions { Adaptive = false } });
            var d = Run(m, prompt, o with { Speculation = new SpeculationOptions { Adaptive = false, Method = SpeculationMethod.Recycle, DraftMax = 24 } });
            var e = Run(m, prompt, o with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 12, ProposerFactory = () => new ScriptTreeProposer(prompt, truth) } });
            var f = Run(m, prompt, o with { Speculation = new SpeculationOptions { Adaptive = false, Method = SpeculationMethod.Draft, DraftModel = ModelCache.Get("tinystories-656k-q4_0.gguf").Model } });
            Assert.That(f.Tokens, Is.EqualTo(a.Tokens), $"seed {seed}, draft model");
            Assert.That(b.Tokens, Is.EqualTo(a.Tokens), $"seed {seed}, scripted drafts");
            Assert.That(c.Tokens, Is.EqualTo(a.Tokens), $"seed {seed}, lookup");
            Assert.That(d.Tokens, Is.EqualTo(a.Tokens), $"seed {seed}, token recycling");
            Assert.That(e.Tokens, Is.EqualTo(a.Tokens), $"seed {seed}, scripted trees");
            accepted += b.Stats.Speculation!.AcceptedTokens;
        }
        Assert.That(accepted, Is.GreaterThan(200), "drafts were accepted");
    }

    [Test]
    public void Stops_inside_an_accepted_run_end_where_plain_decoding_ends()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        var prompt = StoryPrompt(m, 40);
        var plain = new GenerationOptions { MaxTokens = 64, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        var full = Run(m, prompt, plain);
        foreach (int limit in new[] { 1, 2, 7, 33 })
        {
            var o = plain with { MaxTokens = limit };
            var a = Run(m, prompt, o);
            var b = Run(m, prompt, o with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 8, ProposerFactory = () => new ScriptProposer(prompt, full.Tokens) } });
            Assert.That(b.Tokens, Is.EqualTo(a.Tokens), $"max tokens {limit}");
        }
        // A stop string in the middle of a run of accepted drafts.
        string text = m.Tokenizer.Decode(full.Tokens.Take(20).ToArray());
        string stop = text.Substring(text.Length / 2, 4);
        var so = plain with { StopStrings = [stop] };
        var sa = Run(m, prompt, so);
        var sb = Run(m, prompt, so with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 8, ProposerFactory = () => new ScriptProposer(prompt, full.Tokens) } });
        Assert.That(sb.Tokens, Is.EqualTo(sa.Tokens));
        Assert.That(sb.Stats.FinishReason, Is.EqualTo(FinishReason.StopString));
        // A context that fills inside a run.
        var ca = Run(m, prompt, plain, context: prompt.Count + 21);
        var cb = Run(m, prompt, plain with { Speculation = new SpeculationOptions { Adaptive = false, DraftMax = 8, ProposerFactory = () => new ScriptProposer(prompt, full.Tokens) } }, context: prompt.Count + 21);
        Assert.That(cb.Tokens, Is.EqualTo(ca.Tokens));
        Assert.That(cb.Stats.FinishReason, Is.EqualTo(FinishReason.ContextFull));
        Assert.That(cb.Position, Is.EqualTo(ca.Position));
    }

    [Test]
    public void Prompt_lookup_proposes_the_continuation_of_the_latest_match()
    {
        var p = new PromptLookupProposer();
        Span<int> draft = stackalloc int[4];
        // "5 6" occurs twice before the end; the latest one is followed by 9 10.
        int n = p.Propose([5, 6, 7, 8, 5, 6, 9, 10, 11, 5, 6], draft);
        Assert.That(n, Is.EqualTo(4));
        Assert.That(draft.ToArray(), Is.EqualTo(new[] { 9, 10, 11, 5 }));
        // The longest suffix wins: "3 4 5" matches at the start although "4 5" also matches later.
        n = p.Propose([3, 4, 5, 1, 2, 4, 5, 7, 3, 4, 5], draft);
        Assert.That(draft[..n].ToArray(), Is.EqualTo(new[] { 1, 2, 4, 5 }));
        Assert.That(p.Propose([1, 2, 3, 4], draft), Is.Zero, "no repeated bigram");
        Assert.That(p.Propose([7], draft), Is.Zero);
    }

    [Test]
    public void The_budget_drafts_where_verification_pays_and_not_where_it_does_not()
    {
        long ms = System.Diagnostics.Stopwatch.Frequency / 1000;
        int[] sizes = [1, 2, 3, 4, 6, 8];
        var cheap = new DraftBudget(8);
        Assert.That(cheap.DraftLength(8), Is.Zero, "plain decoding is measured first");
        cheap.Record(0, 10 * ms, 0);
        foreach (int k in sizes)
        {
            Assert.That(cheap.DraftLength(8), Is.EqualTo(k), "each size is tried once, smallest first");
            cheap.Record(k, (10 + k) * ms, k);                                          // a GPU: rows almost free
        }
        Assert.That(cheap.DraftLength(8), Is.EqualTo(8));
        Assert.That(cheap.DraftLength(3), Is.EqualTo(3), "never past the room given");
        int plainSteps = 0;
        for (int i = 0; i < 64; i++) if (cheap.DraftLength(8) == 0) plainSteps++;
        Assert.That(plainSteps, Is.EqualTo(2), "while drafting pays, every 32nd pass is plain (plain stays measured)");

        var poor = new DraftBudget(8);
        poor.Record(0, 10 * ms, 0);
        foreach (int k in sizes) poor.Record(k, (10 + k) * ms, 0);                       // guesses always wrong
        int drafts = 0;
        for (int i = 0; i < 16 + 32 + 64; i++) drafts += poor.DraftLength(8);
        Assert.That(drafts, Is.EqualTo(3), "only one-token probes, after 16, 32 and 64 plain steps");

        // A probe that loses a whole step (a draft model catching up) waits for 100 times that in plain steps.
        var dear = new DraftBudget(8);
        dear.Record(0, 10 * ms, 0);
        foreach (int k in sizes) dear.Record(k, 10 * (k + 1) * ms, 0);                  // rows cost as much as steps
        var probes = new List<int>();
        for (int i = 1; i <= 500; i++) if (dear.DraftLength(8) > 0) probes.Add(i);
        Assert.That(probes, Is.EqualTo(new[] { 100, 200, 300, 428 }), "after 100 plain steps each, then the doubling's 128");

        // One plain step 100 times too slow (the OS took the core) must not make drafts that cost two steps look cheap.
        var noisy = new DraftBudget(8);
        noisy.Record(0, 10 * ms, 0);
        foreach (int k in sizes) noisy.Record(k, 10 * (k + 1) * ms, 0);
        noisy.Record(0, 1000 * ms, 0);
        Assert.That(Enumerable.Range(0, 15).Sum(_ => noisy.DraftLength(8)), Is.Zero, "an outlier counts as twice the average");

        // A tree whose acceptance makes 24 nodes the best buy: 1 + 3 tokens for 2 steps' time beats every other size.
        var tree = new DraftBudget(80);
        tree.Record(0, 10 * ms, 0);
        foreach (int k in new[] { 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80 })
            tree.Record(k, (10 + k * 10 / 24) * ms, k >= 24 ? 3 : k / 8);
        Assert.That(tree.DraftLength(80), Is.EqualTo(24));
    }

    [Test]
    public void Out_of_range_options_are_refused_by_name()
    {
        foreach (int bad in new[] { 0, -1, SpeculationOptions.MaxDraft + 1 })
            Assert.That(() => new GenerationOptions { Speculation = new SpeculationOptions { DraftMax = bad } }.Validate(),
                Throws.ArgumentException.With.Message.Contains("--draft-max"));
        Assert.That(() => SpeculationOptions.ParseMethod("medusa"), Throws.ArgumentException.With.Message.Contains("--speculate medusa"));
    }
}
