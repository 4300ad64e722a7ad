using System.Text;
using Tessera.Model;
using Tessera.Tokenization;

namespace Tessera.Generation;

/// <summary>What <see cref="ExactBytes"/> asks of a token model: the log-probabilities of a token sequence.</summary>
public interface ITokenScorer
{
    /// <summary>Token ids run from 0 to this less one.</summary>
    int VocabSize { get; }

    /// <summary>
    /// The log-probability of <paramref name="tokens"/>[<paramref name="from"/>..] given the tokens before them, and
    /// in <paramref name="next"/> (<see cref="VocabSize"/> floats) the log-softmax of the token after them all.
    /// <paramref name="from"/> is at least 1: the first token (BOS, or the first of the text) is given.
    /// </summary>
    double Score(IReadOnlyList<int> tokens, int from, Span<float> next);
}

/// <summary>
/// Exact next-byte probabilities from a tokenized model (Phan et al., "Exact Byte-Level Probabilities from Tokenized
/// Language Models for FIM-Tasks and Model Ensembles", 2024), for a text that may end inside a token. A model that
/// only ever saw canonical tokenizations gives a byte string s the probability of all its cover encodings: the
/// canonical encoding of a prefix s[:j] followed by one token that starts with s[j:] and goes past its end (the
/// byte-token representation). So the next byte b after s has probability proportional to
/// <c>Σ_j P(enc(s[:j])) · Σ_t p(t | enc(s[:j]))</c> over the tokens t that start with s[j:] + b, for which
/// enc(s[:j]) + t is itself canonical; j runs over the last (longest token) bytes, and the end of text is the
/// end-of-generation token after enc(s). Written from the paper; no code of its authors was read.
/// </summary>
/// <remarks>Bytes are those of the model's pieces (with the tokenizer's space prefix, if it adds one). A token that
/// would end inside a multi-byte character cannot be re-tokenized as text to check that it is canonical and is left
/// out; for ASCII text (TinyStories) nothing is left out.</remarks>
public sealed class ExactBytes
{
    /// <summary>Index of the end of text in a distribution from <see cref="Next"/> (after the 256 bytes).</summary>
    public const int End = 256;

    private readonly ITokenScorer _scorer;
    private readonly Tokenizer _tokenizer;
    private readonly byte[][] _bytes;
    private readonly int _maxLen;
    private readonly float[] _next;
    private readonly string _prefix;   // what the tokenizer puts before a text (" " for a space prefix)

    /// <summary>Prepares the vocabulary's byte pieces for <paramref name="scorer"/>'s model.</summary>
    public ExactBytes(ITokenScorer scorer, Tokenizer tokenizer)
    {
        // Without BOS the first token has no probability to weigh split encodings that differ there.
        if (!tokenizer.AddBosByDefault || tokenizer.BosId is null)
            throw new NotSupportedException("exact next-byte probabilities need a model that starts its text with BOS: without it the first token's probability is not defined");
        _scorer = scorer;
        _tokenizer = tokenizer;
        _bytes = new byte[scorer.VocabSize][];
        for (int t = 0; t < _bytes.Length; t++)
        {
            _bytes[t] = t < tokenizer.VocabSize ? tokenizer.GetTokenBytes(t).ToArray() : [];
            _maxLen = Math.Max(_maxLen, _bytes[t].Length);
        }
        _next = new float[scorer.VocabSize];
        string probe = Pieces("a");
        _prefix = probe.EndsWith('a') ? probe[..^1] : throw new NotSupportedException("the tokenizer changes the text it encodes: its byte pieces cannot be matched to the text");
    }

    /// <summary>Scorer calls made so far (each one pass over a few tokens).</summary>
    public int Passes { get; private set; }

    /// <summary>Next-byte distributions computed so far (one per byte <see cref="CompleteWord"/> considered).</summary>
    public int Steps { get; private set; }

    /// <summary>The model's probability of each next byte after <paramref name="text"/> (indices 0 to 255) and of
    /// the end of the text (<see cref="End"/>), in <paramref name="distribution"/> (257 doubles, summing to 1).</summary>
    public void Next(string text, Span<double> distribution)
    {
        if (distribution.Length != End + 1) throw new ArgumentException($"the distribution holds {End + 1} values", nameof(distribution));
        Steps++;
        byte[] s = Encoding.UTF8.GetBytes(_prefix + text);
        int n = s.Length, p = Encoding.UTF8.GetByteCount(_prefix);
        if (Pieces(text) != _prefix + text) throw new NotSupportedException($"the tokenizer normalizes '{text}': its byte pieces cannot be matched to the text");
        // Split points: the start (nothing but BOS), and every position in the text from which one token can reach
        // past the end; a split inside a character cannot be encoded as text.
        var splits = new List<(int J, IReadOnlyList<int> Enc)>();
        for (int j = Math.Max(0, n - _maxLen + 1); j <= n; j++)
        {
            if (j > 0 && j <= p) continue;
            if (j > 0 && j < n && (s[j] & 0xC0) == 0x80) continue;
            var enc = j == 0 ? Prompt("") : Prompt(Encoding.UTF8.GetString(s, p, j - p));
            if (enc.Count == 0) continue;  // no BOS and no text: nothing to condition on
            splits.Add((j, enc));
        }
        int common = splits.Min(x => x.Enc.Count);
        foreach (var (_, enc) in splits)
            for (int i = 0; i < common; i++)
                if (enc[i] != splits[0].Enc[i]) { common = i; break; }
        // Every encoding starts with BOS (checked at construction): at least that is shared.
        var weight = new double[splits.Count];
        var mass = new double[splits.Count][];
        for (int k = 0; k < splits.Count; k++)
        {
            var (j, enc) = splits[k];
            // log P(enc(s[:j])) less the tokens every split shares (they cancel; without BOS the first is given).
            weight[k] = _scorer.Score(enc, common, _next);
            Passes++;
            var m = mass[k] = new double[End + 1];
            int rest = n - j;
            for (int t = 0; t < _bytes.Length; t++)
            {
                var b = _bytes[t];
                if (b.Length == 0)
                {
                    if (j == n && _tokenizer.IsEndOfGeneration(t)) m[End] += Math.Exp(_next[t]);
                    continue;
                }
                if (b.Length <= rest || !b.AsSpan(0, rest).SequenceEqual(s.AsSpan(j, rest))) continue;
                if (!Canonical(s, j, enc, t)) continue;
                m[b[rest]] += Math.Exp(_next[t]);
            }
        }
        double top = weight.Max(), total = 0;
        distribution.Clear();
        for (int k = 0; k < splits.Count; k++)
        {
            double w = Math.Exp(weight[k] - top);
            for (int b = 0; b <= End; b++) distribution[b] += w * mass[k][b];
        }
        foreach (double v in distribution) total += v;
        if (!(total > 0)) throw new InvalidOperationException($"no cover encoding of '{text}' has any probability");
        for (int b = 0; b <= End; b++) distribution[b] /= total;
    }

    /// <summary>The most likely bytes after <paramref name="text"/>, one at a time, until one that is not a letter or
    /// digit (included), the end of text, or <paramref name="limit"/> bytes: the rest of a word cut in the middle.
    /// The next step's text is a string, so a byte that would start a multi-byte character ends the word unwritten.</summary>
    public string CompleteWord(string text, int limit = 24)
    {
        Span<double> d = stackalloc double[End + 1];
        var added = new List<byte>();
        for (int i = 0; i < limit; i++)
        {
            string now = text + Encoding.UTF8.GetString([.. added]);
            Next(now, d);
            int best = 0;
            for (int b = 1; b <= End; b++) if (d[b] > d[best]) best = b;
            if (best == End || best >= 0x80) break;
            added.Add((byte)best);
            if (best < 0x80 && !char.IsAsciiLetterOrDigit((char)best)) break;
        }
        return Encoding.UTF8.GetString([.. added]);
    }

    /// <summary>Whether enc(s[:j]) followed by token t is the canonical encoding of its own bytes.</summary>
    private bool Canonical(byte[] s, int j, IReadOnlyList<int> enc, int t)
    {
        int p = Encoding.UTF8.GetByteCount(_prefix);
        var b = _bytes[t];
        var all = new byte[j + b.Length];
        s.AsSpan(0, j).CopyTo(all);
        b.CopyTo(all, j);
        if (all.Length < p || !all.AsSpan(0, p).SequenceEqual(s.AsSpan(0, p))) return false;
        string text;
        try { text = Strict.GetString(all, p, all.Length - p); }
        catch (DecoderFallbackException) { return false; }  // ends inside a character: see the remarks
        var ids = Prompt(text);
        if (ids.Count != enc.Count + 1 || ids[^1] != t) return false;
        for (int i = 0; i < enc.Count; i++) if (ids[i] != enc[i]) return false;
        return true;
    }

    private static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

    private IReadOnlyList<int> Prompt(string text) => _tokenizer.Encode(text, _tokenizer.AddBosByDefault);

    private string Pieces(string text)
    {
        var bytes = new List<byte>();
        foreach (int id in _tokenizer.Encode(text, false)) _tokenizer.AppendTokenBytes(id, bytes);
        return Encoding.UTF8.GetString([.. bytes]);
    }
}

/// <summary>An <see cref="ITokenScorer"/> over a model's own cache: a sequence that starts like the last one runs
/// only its new tokens.</summary>
public sealed class ModelTokenScorer : ITokenScorer, IDisposable
{
    private readonly LlamaModel _model;
    private readonly RunState _state;
    private readonly List<int> _cached = [];
    private float[] _rows = [];

    /// <summary>Scores with <paramref name="model"/> over a cache of <paramref name="context"/> positions.</summary>
    public ModelTokenScorer(LlamaModel model, int context)
    {
        _model = model;
        _state = model.CreateState(context);
    }

    /// <inheritdoc/>
    public int VocabSize => _model.Config.VocabSize;

    /// <inheritdoc/>
    public double Score(IReadOnlyList<int> tokens, int from, Span<float> next)
    {
        if (from < 1 || from > tokens.Count) throw new ArgumentOutOfRangeException(nameof(from), $"from {from}: must be 1 to {tokens.Count}");
        int v = VocabSize, keep = 0;
        while (keep < _cached.Count && keep < tokens.Count && _cached[keep] == tokens[keep]) keep++;
        keep = Math.Min(keep, from - 1);  // the row before the first scored token must be run
        _state.Rewind(keep);
        _cached.RemoveRange(keep, _cached.Count - keep);
        // Tokens before from - 1 need no logits: run them plainly, then the scored rows with all their logits.
        if (from - 1 > keep)
        {
            var plain = new int[from - 1 - keep];
            for (int i = 0; i < plain.Length; i++) plain[i] = tokens[keep + i];
            _model.Forward(_state, plain);
            _cached.AddRange(plain);
            keep = from - 1;
        }
        var run = new int[tokens.Count - keep];
        for (int i = 0; i < run.Length; i++) run[i] = tokens[keep + i];
        if (_rows.Length < run.Length * v) _rows = new float[run.Length * v];
        var rows = _rows.AsSpan(0, run.Length * v);
        _model.Forward(_state, run, rows);
        _cached.AddRange(run);
        double logp = 0;
        for (int i = from; i < tokens.Count; i++) logp += Evaluation.Perplexity.LogSoftmaxAt(rows.Slice((i - 1 - keep) * v, v), tokens[i]);
        var last = rows.Slice((tokens.Count - 1 - keep) * v, v);
        float max = float.NegativeInfinity;
        foreach (float x in last) max = Math.Max(max, x);
        double sum = 0;
        foreach (float x in last) sum += Math.Exp(x - max);
        float z = max + (float)Math.Log(sum);
        for (int i = 0; i < v; i++) next[i] = last[i] - z;
        return logp;
    }

    /// <summary>Frees the cache.</summary>
    public void Dispose() => _state.Dispose();
}
