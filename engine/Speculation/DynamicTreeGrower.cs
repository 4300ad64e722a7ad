using System.Numerics.Tensors;
using Tessera.Model;

namespace Tessera.Speculation;

/// <summary>
/// DySpec's dynamic draft tree (Xiong et al. 2024): instead of a fixed shape, the tree grows where the draft model is
/// confident. Every candidate node is scored by its path probability under the draft (the product of the draft's
/// probabilities from the root down, at the temperature the target samples at: see <see cref="ScoreTemperature"/>), candidates wait in a max-heap, and the best is taken into the tree and expanded
/// with the draft: its <see cref="ChildrenPerNode"/> most probable continuations become candidates. The tree is filled
/// to its limit (the verify pass always has the size the budget chose, so kernels and graphs see the sizes they
/// were measured at). Taking one node per draft pass is the paper's exact greedy; here each pass takes the best
/// <c>limit / 8</c> (at least 1), which keeps drafting to about eight passes at any size, and with few candidates as
/// good as the best it changes the tree little: a child never scores above its parent, so a node taken in one pass
/// could only have lost its place to a child of another node of the same pass.
/// <para>The draft runs the whole tree so far in each pass (its cached prefix ends before the root) and reads logits
/// only for the rows just taken. Rows enter the tree in the order they are taken, parents before children, so a tree
/// cut to its first rows (a scheduler out of room) keeps its best part. Drafting is deterministic (the same context
/// gives the same tree), so verification's rule for deterministic proposals keeps sampling exact.</para>
/// </summary>
internal sealed class DynamicTreeGrower
{
    /// <summary>Continuations of a taken node that become candidates.</summary>
    public const int ChildrenPerNode = 4;

    private readonly LlamaModel _draft;
    private readonly int _vocab;
    private readonly float[] _logits;              // (rows taken in one pass, vocab)
    private readonly float[] _scratch;             // (vocab) exp of one row
    private readonly float[] _score;               // by tree row: log path probability
    private readonly PriorityQueue<(int Parent, int Token, float Score), float> _candidates;
    private readonly int[] _bestIds = new int[ChildrenPerNode];
    private readonly float[] _bestLogits = new float[ChildrenPerNode];

    /// <summary>A grower drafting with <paramref name="draft"/> into trees of up to <paramref name="capacity"/> rows.</summary>
    public DynamicTreeGrower(LlamaModel draft, int capacity)
    {
        _draft = draft;
        _vocab = draft.Config.VocabSize;
        _logits = new float[PerPass(capacity) * _vocab];
        _scratch = new float[_vocab];
        _score = new float[capacity];
        _candidates = new PriorityQueue<(int, int, float), float>(capacity * ChildrenPerNode);
    }

    /// <summary>
    /// The temperature of the draft distribution that scores candidates: the chance that the target takes a token is
    /// estimated by the draft's probability at the temperature the target samples at. For greedy decoding, where the
    /// target takes its argmax, <see cref="GreedyScoreTemperature"/>: a sharpened draft.
    /// </summary>
    public float ScoreTemperature { get; init; } = 1;

    /// <summary>The score temperature for greedy decoding. Measured on TinyStories story continuations (Q4_0 drafting
    /// for F32, 16-node trees, tokens per step): 1 → 4.14, 0.5 → 5.52, 0.25 → 6.05, 0.1 → 5.99.</summary>
    public const float GreedyScoreTemperature = 0.25f;

    /// <summary>The score temperature for a target sampling at <paramref name="temperature"/> (0: greedy).</summary>
    public static float ScoreTemperatureFor(float temperature) => temperature > 0 ? temperature : GreedyScoreTemperature;

    /// <summary>Rows taken into the tree per draft pass for a tree of <paramref name="limit"/> rows.</summary>
    public static int PerPass(int limit) => Math.Max(1, limit / 8);

    /// <summary>Fills <paramref name="tree"/> (its root set, nothing else yet) with the draft run on
    /// <paramref name="state"/>, whose cache holds the context before the root; the state's position does not move.</summary>
    public void Grow(RunState state, DraftTree tree)
    {
        _candidates.Clear();
        _score[0] = 0;
        int perPass = PerPass(tree.Limit), expandFrom = 0;
        while (true)
        {
            // Expand the rows taken last: one pass over the tree so far, logits for those rows only.
            int rows = tree.Count - expandFrom;
            var logits = _logits.AsSpan(0, rows * _vocab);
            _draft.ForwardTree(state, tree.Tokens.AsSpan(0, tree.Count), tree.Parents.AsSpan(0, tree.Count), logits, expandFrom);
            for (int r = expandFrom; r < tree.Count; r++)
                if (tree.Depths[r] < tree.MaxDepth) PushChildren(r, logits.Slice((r - expandFrom) * _vocab, _vocab));
            expandFrom = tree.Count;
            // Take the best candidates: into the tree, to be expanded by the next pass unless the tree is full.
            for (int k = 0; k < perPass && !tree.IsFull && _candidates.TryDequeue(out var c, out _); k++)
            {
                int row = tree.Add(c.Parent, c.Token);
                if (row < 0) break;
                _score[row] = c.Score;
            }
            if (tree.IsFull || tree.Count == expandFrom) return;
        }
    }

    // The draft's ChildrenPerNode most probable tokens after `row` become candidates scored by path log-probability.
    private void PushChildren(int row, ReadOnlySpan<float> logits)
    {
        float max = TensorPrimitives.Max(logits);
        TensorPrimitives.Subtract(logits, max, _scratch);
        TensorPrimitives.Multiply(_scratch, 1 / ScoreTemperature, _scratch);
        TensorPrimitives.Exp(_scratch, _scratch);
        float logSum = MathF.Log(TensorPrimitives.Sum<float>(_scratch));   // of the scaled logits less their max
        int n = 0;
        for (int t = 0; t < logits.Length; t++)
        {
            float x = logits[t];
            if (n == ChildrenPerNode && !(x > _bestLogits[n - 1])) continue;
            int i = n < ChildrenPerNode ? n++ : n - 1;
            for (; i > 0 && x > _bestLogits[i - 1]; i--)
            {
                _bestLogits[i] = _bestLogits[i - 1];
                _bestIds[i] = _bestIds[i - 1];
            }
            _bestLogits[i] = x;
            _bestIds[i] = t;
        }
        for (int i = 0; i < n; i++)
        {
            float score = _score[row] + (_bestLogits[i] - max) / ScoreTemperature - logSum;
            _candidates.Enqueue((row, _bestIds[i], score), -score);  // the queue pops its smallest priority first
        }
    }
}
