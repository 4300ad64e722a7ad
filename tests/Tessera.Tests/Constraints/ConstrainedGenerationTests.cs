using System.Text.RegularExpressions;
using NUnit.Framework;
using Tessera.Api;
using Tessera.Constraints;
using Tessera.Generation;
using Tessera.Sampling;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Constraints;

/// <summary>Constrained generation on the real TinyStories model, through every path that draws tokens: the output
/// follows the grammar, ends where the grammar ends, and is the same whichever path drew it (one sampler rule).</summary>
public class ConstrainedGenerationTests
{
    private const string File = "tinystories-656k-q8_0.gguf";
    private static readonly Regex Sentence = new(@"^[A-Z][a-z]+ (is|was) (happy|sad|big)\.$");
    private static readonly Grammar SentenceGrammar = Grammar.FromRegex(Sentence.ToString());

    private static (List<int> Tokens, string Text, FinishReason Finish) Library(string prompt, GenerationOptions o)
    {
        var m = ModelCache.Get(File);
        using var state = m.Model.CreateState(256);
        var stats = new GenerationStats();
        var ids = new List<int>();
        var sb = new System.Text.StringBuilder();
        foreach (var t in new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode(prompt, true), o, stats))
        {
            if (t.Token >= 0) ids.Add(t.Token);
            sb.Append(t.Text);
        }
        return (ids, sb.ToString(), stats.FinishReason);
    }

    private static GenerationOptions Seeded(ulong seed, Grammar g) => new()
    {
        MaxTokens = 60, Constraint = g,
        Sampling = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = seed },
    };

    [Test]
    public void EverySampleMatchesAndEndsWhereTheGrammarEnds()
    {
        var texts = new HashSet<string>();
        for (ulong seed = 1; seed <= 20; seed++)
        {
            var r = Library("Tom said", Seeded(seed, SentenceGrammar));
            Assert.That(r.Text.TrimStart(), Does.Match(Sentence.ToString()), $"seed {seed}");
            Assert.That(r.Finish, Is.EqualTo(FinishReason.EndOfGeneration), "complete: nothing may follow the '.'");
            texts.Add(r.Text);
        }
        Assert.That(texts, Has.Count.GreaterThan(5), "sampling still varies inside the grammar");
    }

    [Test]
    public void GreedyUnderAGrammarThatAllowsTheFreeTextIsTheFreeText()
    {
        // A grammar that accepts anything changes nothing: the greedy tokens are the unconstrained ones.
        var free = Library("Once upon a time", new GenerationOptions { MaxTokens = 40, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false });
        var any = Library("Once upon a time", new GenerationOptions { MaxTokens = 40, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false, Constraint = Grammar.ParseGbnf("root ::= [^\\x00]*\n") });
        Assert.That(any.Tokens, Is.EqualTo(free.Tokens));
    }

    [Test]
    public async Task TheSchedulerDrawsWhatTheLibraryDraws()
    {
        using var e = await InferenceEngine.LoadAsync(SharedData.Model(File), new EngineOptions { ContextSize = 256 });
        var schema = Grammar.FromJsonSchema("""{"anyOf": [{"type": "integer", "minimum": 3, "maximum": 250}, {"enum": ["yes", "no"]}, {"type": "string", "maxLength": 12}]}""");
        var jobs = Enumerable.Range(1, 12).Select(i => (Seed: (ulong)i, Grammar: i % 2 == 0 ? schema : SentenceGrammar)).ToArray();
        var served = await Task.WhenAll(jobs.Select(j => e.CompleteAsync("Tom said", Seeded(j.Seed, j.Grammar))));
        for (int i = 0; i < jobs.Length; i++)
        {
            var lib = Library("Tom said", Seeded(jobs[i].Seed, jobs[i].Grammar));
            Assert.That(served[i].TokenIds, Is.EqualTo(lib.Tokens), $"job {i}");
            Assert.That(served[i].FinishReason, Is.EqualTo(FinishReason.EndOfGeneration));
        }
        foreach (var r in served.Where((_, i) => jobs[i].Grammar == schema))
        {
            using var doc = System.Text.Json.JsonDocument.Parse(r.Text.Trim());
            var v = doc.RootElement;
            Assert.That(v.ValueKind is System.Text.Json.JsonValueKind.Number or System.Text.Json.JsonValueKind.String, r.Text);
            if (v.ValueKind == System.Text.Json.JsonValueKind.Number) Assert.That(v.GetInt32(), Is.InRange(3, 250));
            else Assert.That(v.GetString()!.Length, Is.LessThanOrEqualTo(12));
        }
        // n choices under a grammar: each the one-choice run with its seed.
        var three = await e.CompleteChoicesAsync("Tom said", Seeded(40, SentenceGrammar) with { Choices = 3 });
        for (int c = 0; c < 3; c++)
            Assert.That(three[c].TokenIds, Is.EqualTo(Library("Tom said", Seeded(40 + (ulong)c, SentenceGrammar)).Tokens), $"choice {c}");
    }

    [Test]
    public void SpeculationUnderAGrammarIsLossless()
    {
        foreach (var method in new[] { Speculation.SpeculationMethod.Lookup, Speculation.SpeculationMethod.Recycle })
            for (ulong seed = 1; seed <= 4; seed++)
            {
                var plain = Library("Tom said", Seeded(seed, SentenceGrammar));
                var spec = Library("Tom said", Seeded(seed, SentenceGrammar) with { Speculation = new Speculation.SpeculationOptions { Method = method } });
                Assert.That(spec.Tokens, Is.EqualTo(plain.Tokens), $"{method}, seed {seed}");
            }
    }

    [Test]
    public void AVocabularyThatCannotBeginTheGrammarIsRefusedUpFront()
    {
        var tok = ModelCache.Get(File).Tokenizer;
        var e = Assert.Throws<ArgumentException>(() => TokenConstraint.CheckCanStart(Grammar.AnyJsonObject, tok))!;
        Assert.That(e.Message, Does.Contain("no token of this model's vocabulary can begin"));
        Assert.DoesNotThrow(() => TokenConstraint.CheckCanStart(SentenceGrammar, tok));
    }
}
