namespace Tessera.Speculation;

/// <summary>
/// Token Recycling (Luo et al. 2024, "Turning Trash into Treasure"): an adjacency matrix holds, for every token, the
/// <see cref="Successors"/> tokens the target ranked highest after it the last time it was seen, overwritten from
/// the logits of every verified row, rejected rows included (the candidates plain decoding throws away). A draft is a
/// breadth-first walk of the matrix from the root along a static tree template: the template's node (parent, rank)
/// takes the rank-th successor of its parent's token. Nothing to train, a fixed vocab × 8 table of ints (1 MB for a
/// 32k vocabulary). The table is a <see cref="SuccessorTable"/>: share one across requests to keep what it learned
/// (the paper's hot start); a new one starts cold and fills as it goes.
/// </summary>
public sealed class TokenRecyclingProposer : IDraftProposer
{
    /// <summary>Successors kept per token (the paper's k).</summary>
    public const int Successors = 8;

    /// <summary>Rows of the default template (root included): the paper's 80 draft nodes plus the root.</summary>
    public const int DefaultTreeRows = 81;

    private readonly int _vocab;
    private readonly int[] _next;          // (vocab, Successors) ranked successors; -1 = none yet (the table's)
    private readonly int[] _tplParent;     // the template, in breadth-first order (parents before children)
    private readonly int[] _tplRank;
    private readonly int[] _row;           // template node -> tree row of this draft (-1: not placed)
    private readonly int[] _best = new int[Successors];
    private readonly float[] _bestLogit = new float[Successors];

    /// <summary>A proposer for a vocabulary of <paramref name="vocab"/> tokens drafting trees of up to
    /// <paramref name="treeRows"/> rows, over <paramref name="table"/> (shared, hot) or a table of its own (cold).</summary>
    public TokenRecyclingProposer(int vocab, int treeRows = DefaultTreeRows, SuccessorTable? table = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocab, 1);
        if (treeRows is < 1 or > Backends.RaggedBatch.MaxTreeRows)
            throw new ArgumentOutOfRangeException(nameof(treeRows), $"tree rows {treeRows}: 1 to {Backends.RaggedBatch.MaxTreeRows}");
        if (table is not null && table.Vocab != vocab)
            throw new ArgumentException($"a successor table of {table.Vocab} tokens for a model of {vocab}", nameof(table));
        _vocab = vocab;
        _next = (table ?? new SuccessorTable(vocab)).Next;
        (_tplParent, _tplRank) = Template(treeRows);
        _row = new int[_tplParent.Length];
    }

    /// <summary>Depth of each template node's breadth (nodes per depth), the shape the drafts take when the matrix is full.</summary>
    public IReadOnlyList<int> TemplateWidths
    {
        get
        {
            var depth = new int[_tplParent.Length];
            var widths = new List<int>();
            for (int i = 1; i < depth.Length; i++)
            {
                depth[i] = depth[_tplParent[i]] + 1;
                while (widths.Count < depth[i]) widths.Add(0);
                widths[depth[i] - 1]++;
            }
            return widths;
        }
    }

    /// <inheritdoc/>
    /// <remarks>A shared table counts here too: it is what the sequence drafts from.</remarks>
    public long StateBytes => (long)_next.Length * sizeof(int);

    /// <inheritdoc/>
    public void Propose(ReadOnlySpan<int> context, DraftTree tree)
    {
        // The template is breadth-first and each node's parent comes before it, so a node is placed when its parent
        // was and the parent's token has a successor of that rank. A budget below the template's size keeps its
        // shallow part: the nodes every deeper guess depends on.
        _row[0] = 0;
        for (int i = 1; i < _tplParent.Length && !tree.IsFull; i++)
        {
            _row[i] = -1;
            int parentRow = _row[_tplParent[i]];
            if (parentRow < 0) continue;
            int next = _next[(long)tree.Tokens[parentRow] * Successors + _tplRank[i]];
            if (next < 0) continue;
            _row[i] = tree.Add(parentRow, next);
        }
    }

    /// <inheritdoc/>
    public void Observe(DraftTree tree, ReadOnlySpan<float> logits, int vocab)
    {
        if (vocab != _vocab) throw new ArgumentException($"logits of {vocab} tokens for a proposer of {_vocab}", nameof(vocab));
        for (int r = 0; r < tree.Count; r++)
            TopK(logits.Slice(r * vocab, vocab), _next.AsSpan(tree.Tokens[r] * Successors, Successors));
    }

    // The Successors largest logits' tokens, best first; ties to the lower token id (a stable order).
    private void TopK(ReadOnlySpan<float> logits, Span<int> into)
    {
        int n = 0;
        for (int t = 0; t < logits.Length; t++)
        {
            float x = logits[t];
            if (n == Successors && !(x > _bestLogit[n - 1])) continue;
            int i = n < Successors ? n++ : n - 1;
            while (i > 0 && x > _bestLogit[i - 1])
            {
                _bestLogit[i] = _bestLogit[i - 1];
                _best[i] = _best[i - 1];
                i--;
            }
            _bestLogit[i] = x;
            _best[i] = t;
        }
        for (int i = 0; i < Successors; i++) into[i] = i < n ? _best[i] : -1;
    }

    /// <summary>
    /// The static template: the <paramref name="rows"/> − 1 most likely (parent, rank) nodes, assuming the rank-r
    /// successor is right with probability 0.6/(r + 1) independently along a path (a Zipf-like fall-off, as
    /// measured acceptance by rank falls), chosen best first so every node's parent is chosen before it; then
    /// ordered breadth-first. At 81 rows its widths by depth are 8, 23, 25, 17, 6, 1, close to the paper's
    /// hand-made 8, 21, 25, 15, 8, 3.
    /// </summary>
    private static (int[] Parent, int[] Rank) Template(int rows)
    {
        var parent = new List<int> { -1 };
        var rank = new List<int> { 0 };
        var score = new List<double> { 1 };
        var depth = new List<int> { 0 };
        // Candidates: children of chosen nodes, best score first (a max-heap by score).
        var frontier = new PriorityQueue<(int Parent, int Rank), double>();
        static double Step(int r) => 0.6 / (r + 1);
        frontier.Enqueue((0, 0), -Step(0));
        while (parent.Count < rows && frontier.TryDequeue(out var c, out double negScore))
        {
            parent.Add(c.Parent);
            rank.Add(c.Rank);
            score.Add(-negScore);
            depth.Add(depth[c.Parent] + 1);
            int me = parent.Count - 1;
            frontier.Enqueue((me, 0), negScore * Step(0));                            // its first successor
            if (c.Rank + 1 < Successors) frontier.Enqueue((c.Parent, c.Rank + 1), -score[c.Parent] * Step(c.Rank + 1)); // its next sibling
        }
        // Breadth-first order (by depth, then by the order chosen), parents renumbered.
        var order = Enumerable.Range(0, parent.Count).OrderBy(i => depth[i]).ThenBy(i => i).ToArray();
        var index = new int[order.Length];
        for (int i = 0; i < order.Length; i++) index[order[i]] = i;
        var p = new int[order.Length];
        var k = new int[order.Length];
        for (int i = 0; i < order.Length; i++)
        {
            p[i] = parent[order[i]] < 0 ? -1 : index[parent[order[i]]];
            k[i] = rank[order[i]];
        }
        return (p, k);
    }
}

/// <summary>
/// Token Recycling's adjacency matrix: for each token of the vocabulary, the <see cref="TokenRecyclingProposer.Successors"/>
/// tokens the target last ranked highest after it. Share one between the requests of a model to start each request
/// hot. Sequences that write it at the same time only race on which successors are newest, which changes what is
/// guessed, never what is generated (verification decides).
/// </summary>
public sealed class SuccessorTable
{
    /// <summary>An empty table for a vocabulary of <paramref name="vocab"/> tokens.</summary>
    public SuccessorTable(int vocab)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocab, 1);
        Vocab = vocab;
        Next = new int[(long)vocab * TokenRecyclingProposer.Successors];
        Array.Fill(Next, -1);
    }

    /// <summary>Tokens of the vocabulary.</summary>
    public int Vocab { get; }

    internal int[] Next { get; }
}
