namespace Tessera.Kv;

/// <summary>
/// The KV budget of one sequence: for each cached row its RoPE position and its policy's score, and the compression
/// that keeps the cache within <see cref="KvBudgetOptions.Budget"/>. After every step whose rows brought the cache
/// past Budget − 1 rows, the policy keeps Budget − 1 of them: the <see cref="KvBudgetOptions.Sinks"/> first positions,
/// its recent window, and the best-scored of the rest (<see cref="TopK"/>, ties to the earlier position). Kept rows
/// beyond the new end move into the holes the dropped rows left (one row copy per dropped row inside the kept range,
/// not a shift of everything after it), so rows are not in position order; attention does not need them to be, and
/// <see cref="Positions"/> says where each is. The caller copies the rows' keys and values as told and may then free
/// the blocks past <see cref="Count"/>. All arrays are sized once.
/// </summary>
public sealed class KvBudget
{
    private readonly int[] _order, _orderKeys, _chosen, _holes;
    private readonly float[] _rank;
    private readonly bool[] _kept;

    /// <summary>A prompt under a budget is compressed every this many positions and at its end (not after every
    /// chunk a scheduler happens to cut), so what it keeps does not depend on batch sizes or load.</summary>
    public const int PromptChunk = 256;

    /// <summary>A budget for a sequence whose cache holds up to <paramref name="capacity"/> rows.</summary>
    public KvBudget(KvBudgetOptions options, int capacity)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Options = options;
        Policy = options.CreatePolicy();
        Capacity = capacity;
        Positions = new int[capacity];
        Scores = new float[capacity];
        _order = new int[capacity];
        _orderKeys = new int[capacity];
        _chosen = new int[capacity];
        _holes = new int[capacity];
        _rank = new float[capacity];
        _kept = new bool[capacity];
    }

    /// <summary>The settings.</summary>
    public KvBudgetOptions Options { get; }
    /// <summary>The policy.</summary>
    public IKvEvictionPolicy Policy { get; }
    /// <summary>Most rows the cache can hold.</summary>
    public int Capacity { get; }
    /// <summary>Rows cached.</summary>
    public int Count { get; private set; }
    /// <summary>(rows) RoPE position of each cached row.</summary>
    public int[] Positions { get; }
    /// <summary>(rows) the policy's score of each cached row.</summary>
    public float[] Scores { get; }
    /// <summary>The position where the prompt ends: Keyformer anneals τ over the positions generated past it (by
    /// position, so the schedule does not depend on how the prompt was cut into steps). 0 when unknown.</summary>
    public int PromptEnd { get; set; }
    /// <summary>The position of the next row (one past the last recorded).</summary>
    public int NextPosition { get; private set; }
    /// <summary>Positions τ is annealed over (Keyformer): the generation's length when known, else the budget.</summary>
    public int Horizon { get; set; }
    /// <summary>Rows dropped since <see cref="Reset"/>.</summary>
    public long Dropped { get; private set; }
    /// <summary>The most rows cached at once since <see cref="Reset"/>.</summary>
    public int PeakCount { get; private set; }

    /// <summary>Forgets every row (a new sequence).</summary>
    public void Reset()
    {
        Count = PeakCount = NextPosition = 0;
        Dropped = 0;
    }

    /// <summary>The first of a step's <paramref name="rows"/> rows whose attention the policy needs, or -1.</summary>
    public int ScoreFrom(int rows) => Policy.ScoreFrom(rows);

    /// <summary>Keyformer's τ for the next step.</summary>
    public float Temperature => Policy.Temperature(Math.Max(0, NextPosition - PromptEnd), Horizon > 0 ? Horizon : Options.Budget);

    /// <summary>
    /// Records a step of <paramref name="rows"/> rows appended at RoPE positions <paramref name="position"/> .., hands
    /// the policy what the scored rows gave each cached row (<paramref name="received"/>; empty when nothing was
    /// scored), and compresses when over the budget. Writes the row copies to make (row <paramref name="from"/>[i] to
    /// row <paramref name="to"/>[i], in order; each needs at least Budget − 1 entries) and returns how many. With
    /// <paramref name="compress"/> false (inside a prompt, between <see cref="PromptChunk"/> boundaries) it only
    /// records and observes.
    /// </summary>
    /// <exception cref="InvalidOperationException">The rows would pass the capacity.</exception>
    public int AfterStep(int position, int rows, ReadOnlySpan<float> received, Span<int> from, Span<int> to, bool compress = true)
    {
        if (Count + rows > Capacity) throw new InvalidOperationException($"{Count} + {rows} rows pass the KV capacity of {Capacity}");
        for (int i = 0; i < rows; i++)
        {
            Positions[Count + i] = position + i;
            Scores[Count + i] = 0;
        }
        Count += rows;
        NextPosition = position + rows;
        PeakCount = Math.Max(PeakCount, Count);
        if (!received.IsEmpty)
        {
            if (received.Length != Count) throw new ArgumentException($"{received.Length} scores for {Count} cached rows", nameof(received));
            Policy.Observe(this, received, rows);
        }
        int keep = Options.Budget - 1;
        return compress && Count > keep ? Compress(keep, from, to) : 0;
    }

    private int Compress(int keep, Span<int> from, Span<int> to)
    {
        int n = Count;
        // Rows by position (mostly in order already: only moved rows are not).
        var order = _order.AsSpan(0, n);
        var keys = _orderKeys.AsSpan(0, n);
        for (int i = 0; i < n; i++) { order[i] = i; keys[i] = Positions[i]; }
        keys.Sort(order);

        var kept = _kept.AsSpan(0, n);
        kept.Clear();
        int sinks = Math.Min(Options.Sinks, keep);
        int recent = Math.Clamp(Policy.RecentWindow(keep), 0, keep - sinks);
        for (int i = 0; i < sinks; i++) kept[order[i]] = true;
        for (int i = n - recent; i < n; i++) kept[order[i]] = true;
        int chosen = keep - sinks - recent;
        if (chosen > 0)
        {
            var middle = order[sinks..(n - recent)];
            var rank = _rank.AsSpan(0, middle.Length);
            Policy.RankScores(this, middle, rank);
            var pick = _chosen.AsSpan(0, chosen);
            TopK.Select(rank, chosen, pick);
            foreach (int j in pick) kept[middle[j]] = true;
        }

        // Holes below the new end take the kept rows above it, both in row order.
        int holes = 0, moves = 0;
        for (int r = 0; r < keep; r++) if (!kept[r]) _holes[holes++] = r;
        for (int r = keep; r < n; r++)
        {
            if (!kept[r]) continue;
            int h = _holes[moves];
            from[moves] = r;
            to[moves++] = h;
            Positions[h] = Positions[r];
            Scores[h] = Scores[r];
        }
        Dropped += n - keep;
        Count = keep;
        return moves;
    }
}
