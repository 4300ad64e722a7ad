using Tessera.Model;

namespace Tessera.Speculation;

/// <summary>Which proposer drafts tokens for speculative decoding.</summary>
public enum SpeculationMethod
{
    /// <summary>Prompt lookup: continue an earlier occurrence of the last n tokens (<see cref="PromptLookupProposer"/>).</summary>
    Lookup,
    /// <summary>Token Recycling: a tree from the target's own past top-k successors (<see cref="TokenRecyclingProposer"/>).</summary>
    Recycle,
    /// <summary>A smaller model with the same vocabulary drafts a chain (<see cref="DraftModelProposer"/>; needs
    /// <see cref="SpeculationOptions.DraftModel"/>).</summary>
    Draft,
    /// <summary>Self-speculation: the model with a block of layers skipped drafts for itself (<see cref="SelfSpeculativeProposer"/>).</summary>
    Self,
}

/// <summary>The shape of a model's drafts (<c>--tree</c>).</summary>
public enum DraftTreeShape
{
    /// <summary>The method's fixed shape: a greedy chain for a draft model or self-speculation, Token Recycling's
    /// template, prompt lookup's chain.</summary>
    Static,
    /// <summary>DySpec: a tree grown by the draft's path probabilities (<see cref="SpeculationMethod.Draft"/> and
    /// <see cref="SpeculationMethod.Self"/> only).</summary>
    Dynamic,
}

/// <summary>Speculative decoding settings (<c>--speculate</c>, <c>--draft-max</c>).</summary>
public sealed record SpeculationOptions
{
    /// <summary>Most draft tokens accepted by <see cref="DraftMax"/> (a tree of 128 rows with its root).</summary>
    public const int MaxDraft = Backends.RaggedBatch.MaxTreeRows - 1;

    /// <summary>The proposer.</summary>
    public SpeculationMethod Method { get; init; } = SpeculationMethod.Lookup;

    /// <summary>Most tokens drafted per verification pass, i.e. tree nodes below the root (1 to <see cref="MaxDraft"/>).
    /// Null: the method's default (<see cref="DraftLimit"/>).</summary>
    public int? DraftMax { get; init; }

    /// <summary>The draft limit in force: <see cref="DraftMax"/>, else 80 for <see cref="SpeculationMethod.Recycle"/>
    /// (the paper's tree), 32 for a dynamic tree and 8 for a chain.</summary>
    public int DraftLimit => DraftMax ?? (ProposerFactory is not null ? 8
        : Method == SpeculationMethod.Recycle ? TokenRecyclingProposer.DefaultTreeRows - 1
        : Tree == DraftTreeShape.Dynamic ? DynamicTreeDefault : 8);

    /// <summary>The default draft limit of a <see cref="DraftTreeShape.Dynamic"/> tree.</summary>
    public const int DynamicTreeDefault = 32;

    /// <summary>Size each draft by its measured cost and acceptance (<see cref="DraftBudget"/>), drafting nothing
    /// when verification does not pay. Default true; false always drafts up to <see cref="DraftMax"/>
    /// (<c>--draft-fixed</c>).</summary>
    public bool Adaptive { get; init; } = true;

    /// <summary>A proposer of your own, made once per sequence; when set it replaces <see cref="Method"/>'s. Verification
    /// stays lossless whatever it guesses.</summary>
    public Func<IDraftProposer>? ProposerFactory { get; init; }

    /// <summary>For <see cref="SpeculationMethod.Recycle"/>: the successor table to draft from and learn into, shared by
    /// every sequence made with these options (hot start: what one request learned, the next one uses). Null: each
    /// sequence starts with an empty table of its own.</summary>
    public SuccessorTable? Successors { get; init; }

    /// <summary>For <see cref="SpeculationMethod.Draft"/>: the draft model (loaded on the target's backend, the same
    /// vocabulary; <see cref="CheckDraftModel"/>). Each sequence gets its own cache of it.</summary>
    public LlamaModel? DraftModel { get; init; }

    /// <summary>The drafts' shape (<c>--tree static|dynamic</c>); <see cref="DraftTreeShape.Dynamic"/> needs a method
    /// that drafts with a model.</summary>
    public DraftTreeShape Tree { get; init; } = DraftTreeShape.Static;

    /// <summary>For <see cref="SpeculationMethod.Self"/>: layers the draft skips (<c>--skip-layers</c>); null = half of them.</summary>
    public int? SkipLayers { get; init; }

    /// <summary>For <see cref="SpeculationMethod.Self"/>: the model that drafts for itself (TextGenerator sets it to the
    /// target).</summary>
    internal LlamaModel? Target { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="draftPath"/> when the draft cannot draft
    /// for the target: another vocabulary size or other token texts (the ids would mean other tokens).</summary>
    public static void CheckDraftModel(Tokenization.Tokenizer target, Tokenization.Tokenizer draft, string draftPath)
    {
        if (draft.VocabSize != target.VocabSize)
            throw new ArgumentException($"--draft-model {draftPath}: its vocabulary has {draft.VocabSize} tokens, the model's {target.VocabSize}; a draft model must share the model's vocabulary");
        for (int id = 0; id < target.VocabSize; id++)
            if (draft.TokenText(id) != target.TokenText(id))
                throw new ArgumentException($"--draft-model {draftPath}: token {id} is '{draft.TokenText(id)}' there and '{target.TokenText(id)}' in the model; a draft model must share the model's vocabulary");
    }

    /// <summary>Parses a <c>--tree</c> value.</summary>
    /// <exception cref="ArgumentException">Not static or dynamic.</exception>
    public static DraftTreeShape ParseTree(string name) => name.ToLowerInvariant() switch
    {
        "static" => DraftTreeShape.Static,
        "dynamic" => DraftTreeShape.Dynamic,
        _ => throw new ArgumentException($"--tree {name}: unknown shape (known: static, dynamic)"),
    };

    /// <summary>Parses a <c>--speculate</c> value.</summary>
    /// <exception cref="ArgumentException">Not a known method.</exception>
    public static SpeculationMethod ParseMethod(string name) => name.ToLowerInvariant() switch
    {
        "lookup" => SpeculationMethod.Lookup,
        "recycle" => SpeculationMethod.Recycle,
        "draft" => SpeculationMethod.Draft,
        "self" => SpeculationMethod.Self,
        _ => throw new ArgumentException($"--speculate {name}: unknown method (known: lookup, recycle, draft, self)"),
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the option out of range.</summary>
    public void Validate()
    {
        if (DraftMax is { } d && d is < 1 or > MaxDraft)
            throw new ArgumentException($"--draft-max {DraftMax}: must be 1 to {MaxDraft}", nameof(DraftMax));
        if (!Enum.IsDefined(Method)) throw new ArgumentException($"--speculate: unknown method {(int)Method}", nameof(Method));
        if (SkipLayers is < 1) throw new ArgumentException($"--skip-layers {SkipLayers}: must be at least 1", nameof(SkipLayers));
        if (!Enum.IsDefined(Tree)) throw new ArgumentException($"--tree: unknown shape {(int)Tree}", nameof(Tree));
        if (Tree == DraftTreeShape.Dynamic && Method is not (SpeculationMethod.Draft or SpeculationMethod.Self) && ProposerFactory is null)
            throw new ArgumentException($"--tree dynamic grows a tree from a draft model's probabilities: use it with --speculate draft or self, not {Method.ToString().ToLowerInvariant()}", nameof(Tree));
        if (Method == SpeculationMethod.Draft && DraftModel is null && ProposerFactory is null)
            throw new ArgumentException("--speculate draft needs --draft-model FILE (SpeculationOptions.DraftModel)", nameof(DraftModel));
    }

    /// <summary>A new proposer for one sequence of a model with <paramref name="vocab"/> tokens and a context of
    /// <paramref name="contextSize"/> that samples at <paramref name="temperature"/> (0: greedy; a dynamic tree is
    /// scored for it).</summary>
    public IDraftProposer CreateProposer(int vocab, int contextSize, float temperature = 0) => ProposerFactory?.Invoke() ?? Method switch
    {
        SpeculationMethod.Lookup => new PromptLookupProposer(),
        SpeculationMethod.Recycle => new TokenRecyclingProposer(vocab, DraftLimit + 1, Successors),
        SpeculationMethod.Draft => new DraftModelProposer(
            DraftModel ?? throw new ArgumentException("--speculate draft needs --draft-model FILE (SpeculationOptions.DraftModel)"), contextSize, Tree, DraftLimit + 1, temperature),
        SpeculationMethod.Self => new SelfSpeculativeProposer(
            Target ?? throw new InvalidOperationException("self-speculation needs the target model"), contextSize, SkipLayers, Tree, DraftLimit + 1, temperature),
        _ => throw new ArgumentException($"--speculate: unknown method {Method}"),
    };
}

/// <summary>Counts of one speculative generation (<c>--json</c>'s <c>"speculation"</c>).</summary>
public sealed class SpeculationStats
{
    /// <summary>The proposer's name, as <c>--speculate</c> spells it (<c>custom</c> for a <see cref="SpeculationOptions.ProposerFactory"/>).</summary>
    public string Method { get; internal set; } = "";
    /// <summary>Target forward passes after the prompt whose logits gave tokens (each verifies zero or more drafts).</summary>
    public int VerifySteps { get; internal set; }
    /// <summary>Draft tokens fed to the target for checking.</summary>
    public int DraftedTokens { get; internal set; }
    /// <summary>Draft tokens the target agreed with (each one a forward pass saved).</summary>
    public int AcceptedTokens { get; internal set; }
    /// <summary>Bytes the proposer held.</summary>
    public long ProposerBytes { get; internal set; }
    /// <summary>Tokens generated after the first (the first comes from the prompt's pass).</summary>
    public int GeneratedAfterFirst { get; internal set; }
    /// <summary>Generated tokens per target verification pass: <see cref="GeneratedAfterFirst"/> / <see cref="VerifySteps"/>
    /// (1 without speculation).</summary>
    public double TokensPerStep => VerifySteps == 0 ? 0 : (double)GeneratedAfterFirst / VerifySteps;
}
