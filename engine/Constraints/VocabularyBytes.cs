using System.Runtime.CompilerServices;
using Tessera.Tokenization;

namespace Tessera.Constraints;

/// <summary>
/// Every token's bytes, and a trie of them, made once per tokenizer: a constraint checks a drawn token against its
/// bytes, and computes a full mask by walking the trie with the grammar's stacks, so tokens sharing a prefix share
/// its work and a dead prefix prunes all the tokens below it. Control tokens have no bytes and are never allowed
/// by a grammar (end-of-generation tokens are allowed where the grammar can end).
/// </summary>
internal sealed class VocabularyBytes
{
    private static readonly ConditionalWeakTable<Tokenizer, VocabularyBytes> Cache = [];

    public readonly byte[] Bytes;
    public readonly int[] Start;   // token t's bytes are Bytes[Start[t] .. Start[t + 1])
    // Trie: node 0 is the root; children as first-child / next-sibling lists, labelled by a byte.
    public readonly int[] FirstChild, NextSibling, TokensStart, Tokens;
    public readonly byte[] Label;
    public readonly int MaxDepth;

    public static VocabularyBytes For(Tokenizer tokenizer) => Cache.GetValue(tokenizer, t => new VocabularyBytes(t));

    private VocabularyBytes(Tokenizer tokenizer)
    {
        int vocab = tokenizer.Vocabulary.Count;
        var bytes = new List<byte>();
        Start = new int[vocab + 1];
        for (int t = 0; t < vocab; t++)
        {
            Start[t] = bytes.Count;
            if (!tokenizer.IsControl(t)) bytes.AddRange(tokenizer.GetTokenBytes(t));
        }
        Start[vocab] = bytes.Count;
        Bytes = [.. bytes];

        // Build the trie with per-node child dictionaries, then flatten.
        var children = new List<Dictionary<byte, int>> { new() };
        var ends = new List<List<int>?> { null };
        for (int t = 0; t < vocab; t++)
        {
            int node = 0;
            for (int i = Start[t]; i < Start[t + 1]; i++)
            {
                if (!children[node].TryGetValue(Bytes[i], out int child))
                {
                    child = children.Count;
                    children.Add([]);
                    ends.Add(null);
                    children[node][Bytes[i]] = child;
                }
                node = child;
            }
            if (node != 0) (ends[node] ??= []).Add(t);
            MaxDepth = Math.Max(MaxDepth, Start[t + 1] - Start[t]);
        }
        int nodes = children.Count;
        FirstChild = new int[nodes];
        NextSibling = new int[nodes];
        Label = new byte[nodes];
        TokensStart = new int[nodes + 1];
        Array.Fill(FirstChild, -1);
        Array.Fill(NextSibling, -1);
        var tokens = new List<int>();
        for (int n = 0; n < nodes; n++)
        {
            TokensStart[n] = tokens.Count;
            if (ends[n] is { } e) tokens.AddRange(e);
            foreach (var (b, c) in children[n].OrderByDescending(kv => kv.Key))
            {
                Label[c] = b;
                NextSibling[c] = FirstChild[n];
                FirstChild[n] = c;
            }
        }
        TokensStart[nodes] = tokens.Count;
        Tokens = [.. tokens];
    }

    /// <summary>Whether some token's bytes start with <paramref name="bytes"/> and are longer.</summary>
    public bool IsProperPrefix(ReadOnlySpan<byte> bytes)
    {
        int node = 0;
        foreach (byte b in bytes)
        {
            int c = FirstChild[node];
            while (c >= 0 && Label[c] != b) c = NextSibling[c];
            if (c < 0) return false;
            node = c;
        }
        return FirstChild[node] >= 0;
    }

    /// <summary>Tokens in the vocabulary (a model's logits may have more rows, which no grammar allows).</summary>
    public int Count => Start.Length - 1;

    public ReadOnlySpan<byte> Of(int token) => Bytes.AsSpan(Start[token], Start[token + 1] - Start[token]);
}
