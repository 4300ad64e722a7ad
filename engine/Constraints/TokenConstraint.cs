using Tessera.Tokenization;

namespace Tessera.Constraints;

/// <summary>
/// A grammar applied to one sequence's tokens: which token may come next (<see cref="Allows"/>, one token at a time,
/// for rejection sampling; <see cref="Mask"/>, the whole vocabulary, for the fallback and for truncating samplers),
/// and the state after each token drawn. End-of-generation tokens are allowed exactly where the grammar can end.
/// </summary>
public sealed class TokenConstraint
{
    private readonly GrammarMatcher _m;
    private readonly VocabularyBytes _vocab;
    private readonly Tokenizer _tokenizer;
    private readonly int _endToken;
    private int[][] _depth = [];

    /// <summary>A constraint at the start of <paramref name="grammar"/> for <paramref name="tokenizer"/>'s vocabulary.</summary>
    public TokenConstraint(Grammar grammar, Tokenizer tokenizer)
    {
        _m = new GrammarMatcher(grammar);
        _vocab = VocabularyBytes.For(tokenizer);
        _tokenizer = tokenizer;
        _endToken = tokenizer.EndOfGenerationIds.Count > 0 ? tokenizer.EndOfGenerationIds.Min() : -1;
    }

    /// <summary>The grammar's state.</summary>
    public GrammarMatcher Matcher => _m;
    /// <summary>The output so far is complete and nothing may follow: generation ends here.</summary>
    public bool IsComplete => _m.MustEnd;
    /// <summary>Tokens drawn and rejected by the grammar (rejection sampling), and masks computed in full.</summary>
    public long Rejections { get; internal set; }
    /// <inheritdoc cref="Rejections"/>
    public long FullMasks { get; internal set; }
    /// <summary>Mask the whole vocabulary before every draw instead of checking drawn tokens (the baseline
    /// <c>tessera bench</c> measures rejection sampling against; the same distribution).</summary>
    public bool AlwaysMask { get; init; }
    /// <summary>The end-of-generation token to end with (the lowest id the model declares), -1 if none.</summary>
    public int EndToken => _endToken;

    /// <summary>Throws when no token of the vocabulary can begin the grammar's output (TinyStories' vocabulary has
    /// no '{', so it can write no JSON object): a request to check before it is accepted.</summary>
    /// <exception cref="ArgumentException">Nothing can start; the message names the grammar.</exception>
    public static void CheckCanStart(Grammar grammar, Tokenizer tokenizer)
    {
        // A full mask: once per grammar and vocabulary (the server checks a request, then the engine does again).
        if (Startable.TryGetValue(grammar, out var known) && ReferenceEquals(known, tokenizer)) return;
        var c = new TokenConstraint(grammar, tokenizer);
        if (c._m.CanEnd) return;
        var allowed = new bool[tokenizer.Vocabulary.Count];
        if (c.Mask(allowed) == 0)
            throw new ArgumentException($"{grammar.Source}: no token of this model's vocabulary can begin the output the grammar asks for (the vocabulary lacks the characters it needs)");
        Startable.AddOrUpdate(grammar, tokenizer);
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Grammar, Tokenizer> Startable = [];

    /// <summary>Whether <paramref name="token"/> may come next.</summary>
    public bool Allows(int token) =>
        _tokenizer.IsEndOfGeneration(token) ? _m.CanEnd : (uint)token < (uint)_vocab.Count && _m.Allows(_vocab.Of(token));

    /// <summary>Moves past <paramref name="token"/> (an end-of-generation token changes nothing).</summary>
    public void Accept(int token)
    {
        if (!_tokenizer.IsEndOfGeneration(token)) _m.Advance(_vocab.Of(token));
    }

    /// <summary>Sets <paramref name="allowed"/>[t] for every token the grammar allows next and returns how many;
    /// a walk of the vocabulary's trie, each prefix advanced once.</summary>
    public int Mask(Span<bool> allowed)
    {
        FullMasks++;
        allowed.Clear();
        int count = 0;
        if (_m.CanEnd)
            foreach (int t in _tokenizer.EndOfGenerationIds)
                if (t < allowed.Length) { allowed[t] = true; count++; }
        if (_depth.Length < _vocab.MaxDepth + 1)
        {
            _depth = new int[_vocab.MaxDepth + 1][];
            for (int d = 0; d < _depth.Length; d++) _depth[d] = new int[16];
        }
        var (nodes, n) = _m.Current;
        return count + Walk(0, nodes, n, 0, allowed);
    }

    private int Walk(int trieNode, int[] stacks, int stackCount, int depth, Span<bool> allowed)
    {
        int count = 0;
        for (int c = _vocab.FirstChild[trieNode]; c >= 0; c = _vocab.NextSibling[c])
        {
            ref int[] next = ref _depth[depth];
            int survive = _m.Step(stacks, stackCount, _vocab.Label[c], ref next);
            if (survive == 0) continue;
            for (int i = _vocab.TokensStart[c]; i < _vocab.TokensStart[c + 1]; i++)
            {
                allowed[_vocab.Tokens[i]] = true;
                count++;
            }
            count += Walk(c, next, survive, depth + 1, allowed);
        }
        return count;
    }
}
