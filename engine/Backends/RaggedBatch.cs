namespace Tessera.Backends;

/// <summary>
/// The layout of one ragged batched forward step: the rows of several sequences concatenated (sequence s owns rows
/// <c>RowStart[s] .. RowStart[s] + RowCount[s] - 1</c>, at positions <c>StartPos[s] ..</c>), each with a block table
/// into the paged KV cache. Paged layout contract (shared by every backend): per layer a K pool and a V pool, each
/// [blocks][blockSize][kvDim] F16; position p of a sequence lives in block <c>table[p / blockSize]</c>, slot
/// <c>p % blockSize</c>. The arrays are sized once for the largest step and refilled in place: no allocation per step.
/// </summary>
public sealed class RaggedBatch
{
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
        RowSequence = new int[maxRows];
        RowStart = new int[maxSequences];
        RowCount = new int[maxSequences];
        StartPos = new int[maxSequences];
        TableStart = new int[maxSequences];
        TableLength = new int[maxSequences];
        Tables = new int[maxTableEntries];
    }

    /// <summary>Positions per KV block (a power of two).</summary>
    public int BlockSize { get; }
    /// <summary>Sequences in this step.</summary>
    public int Sequences { get; private set; }
    /// <summary>Rows (tokens) in this step, all sequences together.</summary>
    public int Rows { get; private set; }
    /// <summary>(rows) token id of each row.</summary>
    public int[] Tokens { get; }
    /// <summary>(rows) position of each row in its sequence.</summary>
    public int[] Positions { get; }
    /// <summary>(rows) index of the sequence each row belongs to.</summary>
    public int[] RowSequence { get; }
    /// <summary>(sequences) first row of each sequence.</summary>
    public int[] RowStart { get; }
    /// <summary>(sequences) rows of each sequence.</summary>
    public int[] RowCount { get; }
    /// <summary>(sequences) position of each sequence's first row (its tokens already cached).</summary>
    public int[] StartPos { get; }
    /// <summary>(sequences) where each sequence's block table starts in <see cref="Tables"/>.</summary>
    public int[] TableStart { get; }
    /// <summary>(sequences) block-table length of each sequence.</summary>
    public int[] TableLength { get; }
    /// <summary>All block tables, concatenated.</summary>
    public int[] Tables { get; }

    /// <summary>Empties the batch for a new step.</summary>
    public void Clear() => Sequences = Rows = 0;

    /// <summary>Appends a sequence: <paramref name="tokens"/> at positions <paramref name="startPos"/> .., with
    /// <paramref name="blockTable"/> covering at least every position up to the last of them.</summary>
    public void Add(ReadOnlySpan<int> tokens, int startPos, ReadOnlySpan<int> blockTable)
    {
        int s = Sequences;
        if (tokens.IsEmpty) throw new ArgumentException("a sequence needs at least one row", nameof(tokens));
        if (s == RowStart.Length) throw new InvalidOperationException($"the batch holds at most {RowStart.Length} sequences");
        if (Rows + tokens.Length > Tokens.Length) throw new InvalidOperationException($"the batch holds at most {Tokens.Length} rows");
        if ((long)blockTable.Length * BlockSize < startPos + tokens.Length)
            throw new ArgumentException($"the block table covers {blockTable.Length * BlockSize} positions, need {startPos + tokens.Length}", nameof(blockTable));
        int tableStart = s == 0 ? 0 : TableStart[s - 1] + TableLength[s - 1];
        if (tableStart + blockTable.Length > Tables.Length) throw new InvalidOperationException($"the batch holds at most {Tables.Length} block ids");
        RowStart[s] = Rows;
        RowCount[s] = tokens.Length;
        StartPos[s] = startPos;
        TableStart[s] = tableStart;
        TableLength[s] = blockTable.Length;
        blockTable.CopyTo(Tables.AsSpan(tableStart));
        tokens.CopyTo(Tokens.AsSpan(Rows));
        for (int i = 0; i < tokens.Length; i++)
        {
            Positions[Rows + i] = startPos + i;
            RowSequence[Rows + i] = s;
        }
        Rows += tokens.Length;
        Sequences = s + 1;
    }

    /// <summary>The block table of sequence <paramref name="s"/>.</summary>
    public ReadOnlySpan<int> Table(int s) => Tables.AsSpan(TableStart[s], TableLength[s]);
}
