namespace Tessera.Speculation;

/// <summary>
/// The guesses of one verification pass: a tree of tokens whose row 0, the root, is the last token of the context (the
/// next input of the target) and whose every other row continues its parent, an earlier row. A chain is the tree in
/// which each row's parent is the row before it. The target runs all rows in one pass (each attends only to its own
/// path; see <see cref="Backends.RaggedBatch.AddTree"/>). Arrays are sized once: no allocation per pass.
/// </summary>
public sealed class DraftTree
{
    /// <summary>Room for <paramref name="capacity"/> rows, the root included.</summary>
    public DraftTree(int capacity)
    {
        if (capacity is < 1 or > Backends.RaggedBatch.MaxTreeRows)
            throw new ArgumentOutOfRangeException(nameof(capacity), $"a draft tree holds 1 to {Backends.RaggedBatch.MaxTreeRows} rows, not {capacity}");
        Tokens = new int[capacity];
        Parents = new int[capacity];
        Depths = new int[capacity];
        Limit = capacity;
    }

    /// <summary>Rows in the tree, the root included.</summary>
    public int Count { get; private set; }
    /// <summary>Most rows this pass may have (set by the verifier from its budget; at most the capacity).</summary>
    public int Limit { get; private set; }
    /// <summary>Deepest row this pass may have (a pass yields at most its depth + 1 tokens: no deeper than the tokens
    /// still to generate).</summary>
    public int MaxDepth { get; private set; } = int.MaxValue;
    /// <summary>Whether no more rows may be added.</summary>
    public bool IsFull => Count >= Limit;
    /// <summary>(rows) token of each row.</summary>
    public int[] Tokens { get; }
    /// <summary>(rows) parent row of each row; -1 for the root.</summary>
    public int[] Parents { get; }
    /// <summary>(rows) distance of each row from the root.</summary>
    public int[] Depths { get; }

    /// <summary>Starts a new tree with <paramref name="root"/> as row 0, room for <paramref name="limit"/> rows and rows
    /// at most <paramref name="maxDepth"/> below the root.</summary>
    public void Reset(int root, int limit, int maxDepth = int.MaxValue)
    {
        Limit = Math.Clamp(limit, 1, Tokens.Length);
        MaxDepth = Math.Max(0, maxDepth);
        Tokens[0] = root;
        Parents[0] = -1;
        Depths[0] = 0;
        Count = 1;
    }

    /// <summary>Adds <paramref name="token"/> as a child of row <paramref name="parent"/>; returns its row, or -1 when
    /// the tree is full or the child would be deeper than <see cref="MaxDepth"/>.</summary>
    public int Add(int parent, int token)
    {
        if ((uint)parent >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(parent), $"row {parent}: the tree has {Count} rows");
        if (IsFull || Depths[parent] >= MaxDepth) return -1;
        int r = Count++;
        Tokens[r] = token;
        Parents[r] = parent;
        Depths[r] = Depths[parent] + 1;
        return r;
    }

    /// <summary>Adds <paramref name="tokens"/> as a chain below the root, as far as there is room; returns how many.</summary>
    public int AddChain(ReadOnlySpan<int> tokens)
    {
        int parent = 0, added = 0;
        foreach (int t in tokens)
        {
            int r = Add(parent, t);
            if (r < 0) break;
            parent = r;
            added++;
        }
        return added;
    }

    /// <summary>Keeps the first <paramref name="count"/> rows (at least the root): still a tree, since every row's
    /// parent comes before it.</summary>
    public void Truncate(int count) => Count = Math.Clamp(count, 1, Count);

    /// <summary>The child of row <paramref name="row"/> holding <paramref name="token"/>, or -1.</summary>
    public int Child(int row, int token)
    {
        for (int r = row + 1; r < Count; r++)
            if (Parents[r] == row && Tokens[r] == token) return r;
        return -1;
    }
}
