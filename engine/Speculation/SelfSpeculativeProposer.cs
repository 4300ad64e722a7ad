using System.Numerics.Tensors;
using Tessera.Model;

namespace Tessera.Speculation;

/// <summary>
/// Self-speculation by layer skipping (Draft &amp; Verify, SWIFT; train-free): the target itself, with a block of
/// consecutive layers left out, drafts greedy chains for the full model; no second file, the weights shared. Which
/// block: a short calibration on the prompt at the first draft. Every window of <see cref="SkipCount"/> consecutive
/// layers after the first (which builds every later layer's input, so it always stays) is tried on up to <see cref="CalibrationTokens"/> prompt tokens,
/// teacher-forced (one batched pass each), and the window whose next-token argmax agrees with the full model's at the
/// most positions wins (the later window on a tie: late layers refine, early ones build the representation). The
/// choice is a property of the model more than of one prompt, so it is made once per model and skip count, by the
/// first request, and reused (a calibration costs a few prompt passes). The draft keeps its own cache, as a separate
/// draft model would (<see cref="DraftModelProposer"/>).
/// </summary>
public sealed class SelfSpeculativeProposer : IDraftProposer, IDisposable
{
    /// <summary>Prompt tokens the calibration looks at.</summary>
    public const int CalibrationTokens = 64;

    // Per model: the chosen window and its agreement, by skip count.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<LlamaModel, System.Collections.Concurrent.ConcurrentDictionary<int, (int[] Skipped, double Agreement)>> Chosen = new();

    private readonly LlamaModel _model;
    private readonly int _contextSize;
    private readonly DraftTreeShape _shape;
    private readonly int _treeRows;
    private readonly float _temperature;
    private DraftModelProposer? _draft;

    /// <summary>A proposer drafting with <paramref name="model"/> minus <paramref name="skipCount"/> layers (default:
    /// half of them; at most all but the first): chains, or trees of up to <paramref name="treeRows"/> rows when
    /// <paramref name="shape"/> is <see cref="DraftTreeShape.Dynamic"/> (scored for a target sampling at
    /// <paramref name="temperature"/>).</summary>
    public SelfSpeculativeProposer(LlamaModel model, int contextSize, int? skipCount = null,
        DraftTreeShape shape = DraftTreeShape.Static, int treeRows = 1, float temperature = 0)
    {
        _temperature = temperature;
        _shape = shape;
        _treeRows = treeRows;
        ArgumentNullException.ThrowIfNull(model);
        int layers = model.Config.Layers;
        SkipCount = skipCount ?? Math.Max(1, layers / 2);
        if (SkipCount < 1 || SkipCount > layers - 1)
            throw new ArgumentException($"--skip-layers {SkipCount}: the model has {layers} layers; skip 1 to {layers - 1} (the first stays)");
        _model = model;
        _contextSize = contextSize;
    }

    /// <summary>Layers the draft leaves out.</summary>
    public int SkipCount { get; }

    /// <summary>The layers the calibration chose (empty before the first draft).</summary>
    public IReadOnlyList<int> Skipped { get; private set; } = [];

    /// <summary>Agreement of the chosen draft with the full model on the calibration tokens (0 to 1).</summary>
    public double CalibrationAgreement { get; private set; }

    /// <inheritdoc/>
    public long StateBytes => _draft?.StateBytes ?? 0;

    /// <inheritdoc/>
    public void Begin(ReadOnlySpan<int> prompt)
    {
        _draft ??= Calibrate(prompt);
        _draft.Begin(prompt);
    }

    /// <inheritdoc/>
    public void Propose(ReadOnlySpan<int> context, DraftTree tree)
    {
        _draft ??= Calibrate(context);
        _draft.Propose(context, tree);
    }

    private DraftModelProposer Calibrate(ReadOnlySpan<int> context)
    {
        var byCount = Chosen.GetOrCreateValue(_model);
        if (!byCount.TryGetValue(SkipCount, out var chosen))
            byCount[SkipCount] = chosen = Choose(context);
        Skipped = chosen.Skipped;
        CalibrationAgreement = chosen.Agreement;
        return new DraftModelProposer(_model.SkipLayers(chosen.Skipped), _contextSize, _shape, _treeRows, _temperature);
    }

    private (int[] Skipped, double Agreement) Choose(ReadOnlySpan<int> context)
    {
        int n = Math.Min(context.Length, Math.Min(CalibrationTokens, _model.Config.ContextLength));
        var tokens = context[..n].ToArray();
        int vocab = _model.Config.VocabSize;
        var full = Argmax(_model, tokens, vocab);
        int best = -1, bestAgree = -1, layers = _model.Config.Layers;
        for (int start = 1; start + SkipCount <= layers; start++)
        {
            var skipped = _model.SkipLayers([.. Enumerable.Range(start, SkipCount)]);
            var guess = Argmax(skipped, tokens, vocab);
            int agree = 0;
            for (int i = 0; i < n; i++) if (guess[i] == full[i]) agree++;
            if (agree >= bestAgree) { best = start; bestAgree = agree; }
        }
        return ([.. Enumerable.Range(best, SkipCount)], (double)bestAgree / n);
    }

    // The argmax after each token of a teacher-forced pass.
    private static int[] Argmax(LlamaModel model, int[] tokens, int vocab)
    {
        using var state = model.CreateState(tokens.Length, tokens.Length);
        var logits = new float[tokens.Length * vocab];
        model.Forward(state, tokens, logits);
        var result = new int[tokens.Length];
        for (int i = 0; i < tokens.Length; i++) result[i] = TensorPrimitives.IndexOfMax<float>(logits.AsSpan(i * vocab, vocab));
        return result;
    }

    /// <summary>Frees the draft's cache.</summary>
    public void Dispose() => _draft?.Dispose();
}
