using System.Text;
using NUnit.Framework;
using Tessera.Generation;
using Tessera.Tests.Golden;
using Tessera.Tokenization;

namespace Tessera.Tests.Generation;

/// <summary>
/// Exact next-byte probabilities (<see cref="ExactBytes"/>) against brute force: a synthetic model over TinyStories'
/// tokenizer that, as the method assumes of a trained model, gives no mass to a token that would make the sequence
/// non-canonical. The brute force walks every token path whose bytes agree with the text (not only the canonical
/// prefixes the method enumerates), so a missed split, a wrong canonical rule or a misplaced byte would show.
/// </summary>
public class ExactBytesTests
{
    /// <summary>Pseudo-random logits per (sequence, token), masked to canonical continuations and the end.</summary>
    private sealed class CanonicalToyModel(Tokenizer tokenizer, bool mask) : ITokenScorer
    {
        public int VocabSize => tokenizer.VocabSize;
        public int Calls;

        private readonly Dictionary<string, float[]> _memo = [];

        public void Distribution(IReadOnlyList<int> seq, Span<float> logProbs)
        {
            string key = string.Join(',', seq);
            if (_memo.TryGetValue(key, out var known)) { known.CopyTo(logProbs); return; }
            Calls++;
            ulong h = 1469598103934665603UL;
            foreach (int t in seq) h = (h ^ (ulong)t) * 1099511628211UL;
            double z = 0;
            for (int t = 0; t < VocabSize; t++)
            {
                bool ok = tokenizer.IsEndOfGeneration(t) || (tokenizer.GetTokenBytes(t).Length > 0 && IsCanonical([.. seq, t]));
                ulong x = (h ^ (ulong)(t + 1) * 0x9E3779B97F4A7C15UL) * 0xBF58476D1CE4E5B9UL;
                logProbs[t] = ok || !mask ? (float)(((x >> 11) % 6000) / 1000.0 - 3) : float.NegativeInfinity;
                if (ok || !mask) z += Math.Exp(logProbs[t]);
            }
            float lz = (float)Math.Log(z);
            for (int t = 0; t < VocabSize; t++) logProbs[t] -= lz;
            _memo[key] = logProbs.ToArray();
        }

        public double Score(IReadOnlyList<int> tokens, int from, Span<float> next)
        {
            var lp = new float[VocabSize];
            double s = 0;
            for (int i = from; i < tokens.Count; i++)
            {
                Distribution([.. tokens.Take(i)], lp);
                s += lp[tokens[i]];
            }
            Distribution(tokens, next);
            return s;
        }

        /// <summary>Whether a token may follow: the end, or a piece that keeps the sequence canonical.</summary>
        public bool Allowed(IReadOnlyList<int> seq, int t) => tokenizer.IsEndOfGeneration(t) || (tokenizer.GetTokenBytes(t).Length > 0 && IsCanonical([.. seq, t]));

        private bool IsCanonical(int[] seq)
        {
            var bytes = new List<byte>();
            foreach (int t in seq.Skip(1)) tokenizer.AppendTokenBytes(t, bytes);  // after BOS
            string text;
            try { text = new UTF8Encoding(false, true).GetString([.. bytes]); } catch (DecoderFallbackException) { return false; }
            if (!text.StartsWith(' ')) return false;  // TinyStories adds a space prefix
            // The prefix alone is the first piece of every text that does not merge it with its first letters.
            if (text == " ") return true;
            return tokenizer.Encode(text[1..], true).SequenceEqual(seq);
        }
    }

    /// <summary>Every path from BOS whose bytes agree with s: its mass goes to the byte it puts at position n (or the end).</summary>
    private static double[] BruteForce(CanonicalToyModel model, Tokenizer tok, byte[] s)
    {
        var buckets = new double[ExactBytes.End + 1];
        void Walk(List<int> seq, int at, double logp)
        {
            var lp = new float[model.VocabSize];  // one per level: the walk recurses inside the loop
            model.Distribution(seq, lp);
            for (int t = 0; t < model.VocabSize; t++)
            {
                if (float.IsNegativeInfinity(lp[t]) || !model.Allowed(seq, t)) continue;
                double p = logp + lp[t];
                if (tok.IsEndOfGeneration(t)) { if (at == s.Length) buckets[ExactBytes.End] += Math.Exp(p); continue; }
                var b = tok.GetTokenBytes(t);
                int common = Math.Min(b.Length, s.Length - at);
                if (!b[..common].SequenceEqual(s.AsSpan(at, common))) continue;
                if (at + b.Length > s.Length) buckets[b[s.Length - at]] += Math.Exp(p);
                else if (at + b.Length == s.Length) { seq.Add(t); Walk(seq, s.Length, p); seq.RemoveAt(seq.Count - 1); }
                else { seq.Add(t); Walk(seq, at + b.Length, p); seq.RemoveAt(seq.Count - 1); }
            }
        }
        // At the end of s a path goes one token further (its first byte, or the end), then stops.
        void Walk0(List<int> seq, int at, double logp)
        {
            if (at < s.Length) { Walk(seq, at, logp); return; }
        }
        Walk0([tok.BosId!.Value], 0, 0);
        double total = buckets.Sum();
        return [.. buckets.Select(x => x / total)];
    }

    // No piece may start right after the space prefix and reach past the end of the text: the one split the method
    // does not consider (the prefix alone is not the encoding of any text).
    [TestCase("Once upon a ti")]
    [TestCase("The cat sat on the m")]
    [TestCase("Lily and Ben went")]
    [TestCase("He said, \"I want")]
    public void TheNextByteDistributionIsTheSumOverAllTokenPaths(string text)
    {
        // A model that puts no mass on non-canonical sequences (the method's assumption), and one that does: its
        // canonical check must then drop that mass exactly as the walk over canonical paths does.
        foreach (bool mask in new[] { true, false }) Check(text, mask);
    }

    private static void Check(string text, bool mask)
    {
        var tok = ModelCache.Get("tinystories-656k-f32.gguf").Tokenizer;
        byte[] rest = Encoding.UTF8.GetBytes(text);
        Assert.That(Enumerable.Range(0, tok.VocabSize).Any(t => tok.GetTokenBytes(t).Length > rest.Length && tok.GetTokenBytes(t).StartsWith(rest)), Is.False,
            "no piece starts right after the space prefix and covers the whole text");
        var model = new CanonicalToyModel(tok, mask);
        var exact = new ExactBytes(model, tok);
        var got = new double[ExactBytes.End + 1];
        exact.Next(text, got);
        var want = BruteForce(model, tok, Encoding.UTF8.GetBytes(" " + text));
        Assert.That(got.Sum(), Is.EqualTo(1).Within(1e-9));
        for (int b = 0; b <= ExactBytes.End; b++)
            Assert.That(got[b], Is.EqualTo(want[b]).Within(1e-9 + 1e-6 * want[b]), $"byte {b} ('{(b < 128 ? (char)b : '?')}'), mask {mask}");
        Assert.That(want.Count(x => x > 1e-6), Is.GreaterThan(3), "the distribution is spread over several bytes");
    }

    [Test]
    public void OnTinyStoriesACutWordIsCompleted()
    {
        var m = ModelCache.Get("tinystories-656k-f32.gguf");
        using var scorer = new ModelTokenScorer(m.Model, 256);
        var exact = new ExactBytes(scorer, m.Tokenizer);
        var d = new double[ExactBytes.End + 1];
        exact.Next("Once upon a ti", d);
        Assert.That(d.Sum(), Is.EqualTo(1).Within(1e-9));
        int best = Array.IndexOf(d, d.Max());
        Assert.That((char)best, Is.EqualTo('m'), "'Once upon a ti' goes on with 'me'");
        Assert.That(exact.CompleteWord("Once upon a ti"), Is.EqualTo("me,").Or.EqualTo("me "));
        var cli = Cli.CliRunner.Run("generate", "-m", SharedData.Model("tinystories-656k-q8_0.gguf"), "-p", "Once upon a ti", "--exact-bytes", "-n", "8", "--temp", "0", "--json");
        Assert.That(cli.ExitCode, Is.EqualTo(0), cli.Err);
        using var doc = System.Text.Json.JsonDocument.Parse(cli.Out);
        Assert.That(doc.RootElement.GetProperty("text").GetString(), Does.StartWith("me"));
        var clash = Cli.CliRunner.Run("generate", "-m", SharedData.Model("tinystories-656k-q8_0.gguf"), "-p", "Once upon a ti", "--exact-bytes", "--token-healing");
        Assert.That(clash.Err, Does.Contain("--exact-bytes: not with --token-healing"));
    }
}
