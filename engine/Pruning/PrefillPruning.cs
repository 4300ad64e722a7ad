using Tessera.Backends;

namespace Tessera.Pruning;

/// <summary>
/// The prompt pruning of one sequence (<see cref="Model.RunState.UsePrefillPruning"/>): armed for the next prompt
/// step, and afterwards the record of which cache rows each layer lacks. A pruned prompt step leaves, per layer l,
/// its kept rows' keys and values at cache rows <c>start .. start + kept(l) - 1</c> (in prompt order) and nothing at
/// <c>start + kept(l) .. end - 1</c>: attention in that layer skips those rows (<see cref="RaggedBatch.HiddenStart"/>)
/// in every later step. Each layer's rows are its own (K and V pools are per layer), so laying them out per layer
/// costs nothing. Pruned tokens stay pruned: LazyLLM's revival of a pruned token from an aux cache of hidden states
/// when a later step would select it is not implemented (it needs a causal mask by position, not by row).
/// </summary>
public sealed class PrefillPruning
{
    internal PrefillPruning(PrefillPruningOptions options, int layers, int maxRows, int maxTable, int blockSize)
    {
        options.Validate();
        Options = options;
        Schedule = options.Schedule(layers);
        HoleStart = new int[layers];
        Batch = new RaggedBatch(maxRows, 1, maxTable, blockSize);
        Original = new int[maxRows];
        Kept = new int[maxRows];
        Tokens = new int[maxRows];
        Positions = new int[maxRows];
        Rank = new float[maxRows];
    }

    /// <summary>The settings.</summary>
    public PrefillPruningOptions Options { get; }
    /// <summary>Pruning layers and the share of the prompt that goes on from each.</summary>
    public IReadOnlyList<(int Layer, double Keep)> Schedule { get; }
    /// <summary>Rows of the last pruned prompt.</summary>
    public int PromptRows { get; internal set; }
    /// <summary>Rows that ran through the last layer of the last pruned prompt.</summary>
    public int KeptRows { get; internal set; }
    /// <summary>The prompt rows (indices in the prompt, ascending) that ran through the last layer of the last pruned prompt.</summary>
    public ReadOnlySpan<int> KeptIndices => Original.AsSpan(0, KeptRows);
    /// <summary>Row-layers the last pruned prompt ran, over rows × layers without pruning (the work it did).</summary>
    public double ComputedShare { get; internal set; }

    internal bool Armed { get; set; }
    internal bool HasHoles { get; private set; }
    internal int[] HoleStart { get; }     // per layer: first cache row the layer lacks (HoleEnd when none)
    internal int HoleEnd { get; private set; }
    internal RaggedBatch Batch { get; }   // the step's rows from a pruning layer on
    internal int[] Original { get; }      // current row j is prompt row Original[j]
    internal int[] Kept { get; }
    internal int[] Tokens { get; }
    internal int[] Positions { get; }     // RoPE position of each prompt row
    internal float[] Rank { get; }

    /// <summary>The rows layer <paramref name="layer"/> lacks: [start, end), empty when nothing was pruned.</summary>
    internal (int Start, int End) Hole(int layer) => HasHoles ? (HoleStart[layer], HoleEnd) : (0, 0);

    internal void SetHoles(int end, ReadOnlySpan<int> startPerLayer)
    {
        startPerLayer.CopyTo(HoleStart);
        HoleEnd = end;
        HasHoles = true;
    }

    /// <summary>Forgets the holes (the sequence starts over).</summary>
    internal void Clear()
    {
        HasHoles = false;
        HoleEnd = 0;
    }
}
