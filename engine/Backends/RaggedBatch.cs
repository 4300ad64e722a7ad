namespace Tessera.Backends;

/// <summary>Which rows of a sequence a step computes logits for.</summary>
public enum RowLogits
{
    /// <summary>Only the last row (a prompt chunk, a decode step).</summary>
    Last,
    /// <summary>Every row (verification of a draft, perplexity).</summary>
    All,
}

/// <summary>
/// The layout of one forward step: the rows of several sequences concatenated (sequence s owns rows
/// <c>RowStart[s] .. RowStart[s] + RowCount[s] - 1</c>), each with a block table into the paged KV cache. Every row
/// carries its token, its <see cref="Positions">position</see> (for RoPE), its <see cref="CachePositions">cache
/// position</see> (where its keys and values are written: always <c>StartPos[s] + i</c> for the sequence's row i) and
/// its ancestors among the sequence's rows. A row attends to the sequence's cached positions <c>0 .. StartPos[s] - 1</c>
/// plus its ancestors and itself:
/// <list type="bullet">
/// <item>a chain (<see cref="Add"/>: a prompt chunk, a decode row, a draft run) has row i at position StartPos + i
/// with rows 0 .. i - 1 as ancestors: plain causal attention;</item>
/// <item>a tree (<see cref="AddTree"/>: a draft tree) has row i at position StartPos + depth(i), seeing only the rows
/// on its path to the root, through <see cref="Ancestors"/>.</item>
/// </list>
/// Logits are computed for the rows each sequence asks for (<see cref="LogitRow"/>), in row order.
/// Paged layout contract (shared by every backend): per layer a K pool and a V pool, each [blocks][blockSize][kvDim]
/// F16; cache position p of a sequence lives in block <c>table[p / blockSize]</c>, slot <c>p % blockSize</c>. The
/// arrays are sized once for the largest step and refilled in place: no allocation per step.
/// </summary>
public sealed class RaggedBatch
{
    /// <summary>Most rows of one tree (the width of <see cref="Ancestors"/>).</summary>
    public const int MaxTreeRows = 64 * MaskWords;

    /// <summary>64-bit words of each row's ancestor mask.</summary>
    public const int MaskWords = 2;

    /// <summary>Room for <paramref name="maxRows"/> rows of <paramref name="maxSequences"/> sequences whose block
    /// tables total at most <paramref name="maxTableEntries"/> ids.</summary>
    public RaggedBatch(int maxRows, int maxSequences, int maxTableEntries, int blockSize)
    {
        if (maxRows <= 0) throw new ArgumentOutOfRangeException(nameof(maxRows), "must be positive");
        if (maxSequences <= 0) throw new ArgumentOutOfRangeException(nameof(maxSequences), "must be positive");
        if (blockSize <= 0 || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), $"KV block size {blockSize}: must be a power of two");
        BlockSize = blockSize;
        Tokens = new int[maxRows];
        Positions = new int[maxRows];
        CachePositions = new int[maxRows];
        RowSequence = new int[maxRows];
        LogitRow = new int[maxRows];
        Ancestors = new ulong[maxRows * MaskWords];
        RowStart = new int[maxSequences];
        RowCount = new int[maxSequences];
        StartPos = new int[maxSequences];
        IsTree = new bool[maxSequences];
        LogitStart = new int[maxSequences];
        LogitCount = new int[maxSequences];
        TableStart = new int[maxSequences];
        TableLength = new int[maxSequences];
        HiddenStart = new int[maxSequences];
        HiddenEnd = new int[maxSequences];
        Tables = new int[maxTableEntries];
    }

    /// <summary>Positions per KV block (a power of two).</summary>
    public int BlockSize { get; }
    /// <summary>Sequences in this step.</summary>
    public int Sequences { get; private set; }
    /// <summary>Rows (tokens) in this step, all sequences together.</summary>
    public int Rows { get; private set; }
    /// <summary>Rows whose logits this step computes, all sequences together.</summary>
    public int LogitRows { get; private set; }
    /// <summary>Whether some sequence of this step is a tree.</summary>
    public bool HasTrees { get; private set; }
    /// <summary>(rows) token id of each row.</summary>
    public int[] Tokens { get; }
    /// <summary>(rows) position of each row in its sequence (what RoPE rotates by).</summary>
    public int[] Positions { get; }
    /// <summary>(rows) cache position each row's keys and values are written to: <c>StartPos[s] + i</c> for row i of
    /// sequence s (the same as <see cref="Positions"/> for a chain whose cache dropped nothing).</summary>
    public int[] CachePositions { get; }
    /// <summary>(rows) index of the sequence each row belongs to.</summary>
    public int[] RowSequence { get; }
    /// <summary>(rows) index of each row's logits among the step's logit rows, or -1 when none are computed.</summary>
    public int[] LogitRow { get; }
    /// <summary>(rows × <see cref="MaskWords"/>) for a row of a tree: bit j set when the sequence's row j is the row
    /// itself or one of its ancestors. Not filled for chains (their mask is implicit).</summary>
    public ulong[] Ancestors { get; }
    /// <summary>(sequences) first row of each sequence.</summary>
    public int[] RowStart { get; }
    /// <summary>(sequences) rows of each sequence.</summary>
    public int[] RowCount { get; }
    /// <summary>(sequences) positions of each sequence already cached (the cache position of its first row).</summary>
    public int[] StartPos { get; }
    /// <summary>(sequences) whether each sequence's rows form a tree (masked by <see cref="Ancestors"/>).</summary>
    public bool[] IsTree { get; }
    /// <summary>(sequences) first logit row of each sequence.</summary>
    public int[] LogitStart { get; }
    /// <summary>(sequences) logit rows of each sequence.</summary>
    public int[] LogitCount { get; }
    /// <summary>(sequences) where each sequence's block table starts in <see cref="Tables"/>.</summary>
    public int[] TableStart { get; }
    /// <summary>(sequences) block-table length of each sequence.</summary>
    public int[] TableLength { get; }
    /// <summary>(sequences) with <see cref="HiddenEnd"/>: cache positions [HiddenStart, HiddenEnd) of each sequence that
    /// attention skips (a pruned prompt's rows that have no keys and values in this layer: the model sets them per
    /// layer). Empty (0, 0) unless set.</summary>
    public int[] HiddenStart { get; }
    /// <summary>(sequences) end of the hidden cache positions (see <see cref="HiddenStart"/>).</summary>
    public int[] HiddenEnd { get; }
    /// <summary>All block tables, concatenated.</summary>
    public int[] Tables { get; }

    /// <summary>Empties the batch for a new step.</summary>
    public void Clear()
    {
        Sequences = Rows = LogitRows = 0;
        HasTrees = false;
    }

    /// <summary>Appends a chain: <paramref name="tokens"/> cached at <paramref name="startPos"/> .., each row
    /// attending to everything before it, with <paramref name="blockTable"/> covering at least every position up to
    /// the last of them; logits for the rows <paramref name="logits"/> names. Their RoPE positions are
    /// <paramref name="position"/> .. when given: a sequence whose cache dropped positions (a KV budget) keeps counting
    /// positions past the rows it still holds. By default they equal the cache positions.</summary>
    public void Add(ReadOnlySpan<int> tokens, int startPos, ReadOnlySpan<int> blockTable, RowLogits logits = RowLogits.Last, int position = -1)
    {
        int s = Begin(tokens, startPos, blockTable);
        int first = position < 0 ? startPos : position;
        for (int i = 0; i < tokens.Length; i++)
        {
            Positions[Rows + i] = first + i;
            LogitRow[Rows + i] = logits == RowLogits.All || i == tokens.Length - 1 ? LogitRows++ : -1;
        }
        End(s, tokens.Length, tree: false);
    }

    /// <summary>Appends a tree of <paramref name="tokens"/> whose row i descends from row
    /// <paramref name="parents"/>[i] (row 0 is a root, parent -1; every other parent is an earlier row, or -1 for another
    /// root of a forest): row i sits at
    /// position <c>startPos + depth(i)</c>, is cached at <c>startPos + i</c>, and attends to the cached positions
    /// before <paramref name="startPos"/> plus its path to the root. Rows from <paramref name="logitsFrom"/> on get
    /// logits (all of them for verification; a dynamic draft tree asks only for the rows it is about to expand).
    /// With <paramref name="position"/> the roots sit at that RoPE position instead of <paramref name="startPos"/>
    /// (see <see cref="Add"/>).</summary>
    /// <exception cref="ArgumentException">The parents do not form such a tree, or it has more than <see cref="MaxTreeRows"/> rows.</exception>
    public void AddTree(ReadOnlySpan<int> tokens, ReadOnlySpan<int> parents, int startPos, ReadOnlySpan<int> blockTable, int logitsFrom = 0, int position = -1)
    {
        if ((uint)logitsFrom >= (uint)Math.Max(tokens.Length, 1))
            throw new ArgumentOutOfRangeException(nameof(logitsFrom), $"logits from row {logitsFrom}: the tree has {tokens.Length} rows");
        if (parents.Length != tokens.Length) throw new ArgumentException($"{tokens.Length} tokens but {parents.Length} parents", nameof(parents));
        if (tokens.Length > MaxTreeRows) throw new ArgumentException($"a tree has at most {MaxTreeRows} rows, got {tokens.Length}", nameof(tokens));
        if (!parents.IsEmpty && parents[0] != -1) throw new ArgumentException($"row 0 is the root: its parent must be -1, got {parents[0]}", nameof(parents));
        for (int i = 1; i < parents.Length; i++)
            if (parents[i] < -1 || parents[i] >= i)
                throw new ArgumentException($"tree row {i}: parent {parents[i]} is not an earlier row (or -1 for another root)", nameof(parents));
        int s = Begin(tokens, startPos, blockTable);
        for (int i = 0; i < tokens.Length; i++)
        {
            int r = Rows + i;
            var mask = Ancestors.AsSpan(r * MaskWords, MaskWords);
            if (parents.IsEmpty || parents[i] < 0)
            {
                // A root (the first row, or another root of a forest: Cautious NTP's trials) sees only the cached prefix.
                mask.Clear();
                Positions[r] = position < 0 ? startPos : position;
            }
            else
            {
                int parent = Rows + parents[i];
                Ancestors.AsSpan(parent * MaskWords, MaskWords).CopyTo(mask);
                Positions[r] = Positions[parent] + 1;
            }
            mask[i >> 6] |= 1UL << (i & 63);
            LogitRow[r] = i >= logitsFrom ? LogitRows++ : -1;
        }
        End(s, tokens.Length, tree: true);
        HasTrees = true;
    }

    private int Begin(ReadOnlySpan<int> tokens, int startPos, ReadOnlySpan<int> blockTable)
    {
        int s = Sequences;
        if (tokens.IsEmpty) throw new ArgumentException("a sequence needs at least one row", nameof(tokens));
        if (startPos < 0) throw new ArgumentOutOfRangeException(nameof(startPos), $"start position {startPos}: must not be negative");
        if (s == RowStart.Length) throw new InvalidOperationException($"the batch holds at most {RowStart.Length} sequences");
        if (Rows + tokens.Length > Tokens.Length) throw new InvalidOperationException($"the batch holds at most {Tokens.Length} rows");
        if ((long)blockTable.Length * BlockSize < (long)startPos + tokens.Length)
            throw new ArgumentException($"the block table covers {blockTable.Length * BlockSize} positions, need {startPos + tokens.Length}", nameof(blockTable));
        int tableStart = s == 0 ? 0 : TableStart[s - 1] + TableLength[s - 1];
        if (tableStart + blockTable.Length > Tables.Length) throw new InvalidOperationException($"the batch holds at most {Tables.Length} block ids");
        RowStart[s] = Rows;
        RowCount[s] = tokens.Length;
        HiddenStart[s] = HiddenEnd[s] = 0;
        StartPos[s] = startPos;
        TableStart[s] = tableStart;
        TableLength[s] = blockTable.Length;
        LogitStart[s] = LogitRows;
        blockTable.CopyTo(Tables.AsSpan(tableStart));
        tokens.CopyTo(Tokens.AsSpan(Rows));
        for (int i = 0; i < tokens.Length; i++)
        {
            CachePositions[Rows + i] = startPos + i;
            RowSequence[Rows + i] = s;
        }
        return s;
    }

    private void End(int s, int rows, bool tree)
    {
        IsTree[s] = tree;
        LogitCount[s] = LogitRows - LogitStart[s];
        Rows += rows;
        Sequences = s + 1;
    }

    /// <summary>Whether row <paramref name="row"/> attends to row <paramref name="j"/> of its own sequence (counted
    /// from the sequence's first row): j is the row itself or, in a tree, an ancestor; in a chain, any j up to it.</summary>
    public bool Sees(int row, int j)
    {
        int s = RowSequence[row], i = row - RowStart[s];
        if ((uint)j > (uint)i) return false;
        return !IsTree[s] || (Ancestors[row * MaskWords + (j >> 6)] & (1UL << (j & 63))) != 0;
    }

    /// <summary>Where row <paramref name="row"/> stands in the chain a sliding window is measured along
    /// (<see cref="AttentionVariant.Window"/>): its cache position in a chain; in a tree, the tree's start plus the
    /// row's depth, the cache position it would have with only its path cached (as after acceptance).</summary>
    public int WindowPosition(int row)
    {
        int s = RowSequence[row];
        if (!IsTree[s]) return CachePositions[row];
        int depth = -1;
        for (int w = 0; w < MaskWords; w++) depth += System.Numerics.BitOperations.PopCount(Ancestors[row * MaskWords + w]);
        return StartPos[s] + depth;
    }

    /// <summary>The block table of sequence <paramref name="s"/>.</summary>
    public ReadOnlySpan<int> Table(int s) => Tables.AsSpan(TableStart[s], TableLength[s]);
}
