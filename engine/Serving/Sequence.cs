using System.Threading.Channels;
using Tessera.Api;
using Tessera.Generation;
using Tessera.Sampling;

namespace Tessera.Serving;

/// <summary>
/// One request inside the scheduler: its tokens (prompt, then generated), how many of them are in the KV cache,
/// its block table, and its own sampler and text decoding. Only the scheduler's loop touches the mutable state; the
/// consumer reads <see cref="Output"/> and may flag cancellation from any thread.
/// </summary>
internal sealed class Sequence
{
    private readonly ChoiceStream _output;
    private CancellationTokenRegistration _registration;
    private volatile bool _cancelled, _finished;

    public Sequence(long id, IReadOnlyList<int> prompt, GenerationOptions options, Sampler sampler,
        Utf8StreamDecoder decoder, StopStringFilter stops, ChoiceStream? output = null, int choice = 0)
    {
        Id = id;
        _output = output ?? new ChoiceStream(1);
        Choice = choice;
        Tokens = new List<int>(prompt.Count + Math.Min(options.MaxTokens, 4096));
        Tokens.AddRange(prompt);
        PromptLength = prompt.Count;
        Options = options;
        Sampler = sampler;
        Decoder = decoder;
        Stops = stops;
    }

    /// <summary>Which of its request's choices this sequence is (0 for the first; see <see cref="GenerationOptions.Choices"/>).</summary>
    public int Choice { get; }
    /// <summary>The request's other choices, not yet started: forked from this sequence once its prompt is cached
    /// (the prompt is computed once), then run as sequences of their own. Null when there are none (left).</summary>
    public List<Sequence>? Followers { get; set; }
    /// <summary>On a request's first choice: all its other choices, started or not (for the consumer to abandon).</summary>
    public IReadOnlyList<Sequence> OtherChoices { get; set; } = [];
    /// <summary>Arrival order (also the admission order: older sequences are never preempted for newer ones).</summary>
    public long Id { get; }
    /// <summary>Prompt, then every generated token; the last one is not yet in the cache while running.</summary>
    public List<int> Tokens { get; }
    public int PromptLength { get; }
    /// <summary>Tokens whose keys and values are in the cache (positions 0 .. Computed - 1).</summary>
    public int Computed { get; set; }
    /// <summary>Tokens still to run before the next logits: the prompt's rest, or the one sampled token.</summary>
    public int Remaining => Tokens.Count - Computed;
    /// <summary>The KV budget of this sequence (<see cref="GenerationOptions.KvBudget"/>), or null.</summary>
    public Kv.KvBudget? Kv { get; init; }
    /// <summary>The prompt pruning of this sequence (<see cref="GenerationOptions.PrefillPruning"/>), or null: armed
    /// until its prompt ran as a step of its own, then the record of the rows each layer lacks.</summary>
    public Pruning.PrefillPruning? Pruning { get; init; }
    /// <summary>Positions the KV budget dropped: the cache holds <see cref="Cached"/> rows for <see cref="Computed"/>
    /// tokens.</summary>
    public int Dropped { get; set; }
    /// <summary>Rows in the sequence's blocks (the next row's cache position).</summary>
    public int Cached => Computed - Dropped;
    /// <summary>Physical KV block ids, in position order.</summary>
    public List<int> Blocks { get; } = [];
    /// <summary>Chain hashes of the leading full blocks already registered for prefix reuse.</summary>
    public List<ulong> BlockHashes { get; } = [];
    public GenerationOptions Options { get; }
    public Sampler Sampler { get; }
    public Utf8StreamDecoder Decoder { get; }
    public StopStringFilter Stops { get; }
    /// <summary>The prompt text token healing took back, dropped from the start of the output.</summary>
    public HealedPrefix Healed { get; init; } = new("");
    /// <summary>A copy of the raw logits for log-probabilities (the sampler's penalties change them in place).</summary>
    public float[]? RawLogits { get; set; }
    /// <summary>Whether its tokens can be drawn on the device (decided once, at submission: the options never change).</summary>
    public bool DrawsOnDevice { get; init; }
    public int Generated { get; set; }
    public bool Finished => _finished;
    /// <summary>Prompt tokens served from cached blocks instead of computed (first admission only).</summary>
    public int PrefixHitTokens { get; set; }
    public bool Admitted { get; set; }
    /// <summary>Scheduler step of the first admission, of the first sampled token, of the last one; and the most
    /// steps between two consecutive tokens (1 when the sequence decoded in every step). For tests of the policy.</summary>
    public long AdmittedStep { get; set; } = -1;
    public long FirstTokenStep { get; set; } = -1;
    public long LastTokenStep { get; set; } = -1;
    public long MaxStepsBetweenTokens { get; set; }
    public int TimesPreempted { get; set; }
    /// <summary>The sequence's draft proposer once its prompt is cached, when its options ask for speculation; else null.</summary>
    public Speculation.IDraftProposer? Proposer { get; set; }
    /// <summary>The draft of the step being run (root = the next input), when it has more than the root.</summary>
    public Speculation.DraftTree? Draft { get; set; }
    /// <summary>Whether this step runs <see cref="Draft"/> as a tree (else the one next token).</summary>
    public bool Drafting { get; set; }
    /// <summary>The accepted path's rows of the last verified draft (root first); sized once.</summary>
    public int[] Path { get; set; } = [];
    /// <summary>The shared draft budget when the options size drafts adaptively.</summary>
    public Speculation.DraftBudget? Budget { get; set; }
    /// <summary>Draft size asked for this step.</summary>
    public int Asked { get; set; }
    /// <summary>Time the proposer took for this step's draft (a draft model's steps).</summary>
    public long ProposeTicks { get; set; }
    /// <summary>Drafted and accepted tokens so far.</summary>
    public int DraftedTokens { get; set; }
    /// <summary>Draft tokens the target agreed with.</summary>
    public int AcceptedTokens { get; set; }

    /// <summary>The prompt's log-probabilities being collected (<see cref="GenerationOptions.PromptLogProbs"/>), one per
    /// prompt token after the first; null when not asked for, or once they were sent.</summary>
    public List<TokenLogProb>? PromptLogProbs { get; set; }
    /// <summary>Cautious NTP's trials (<see cref="GenerationOptions.Cautious"/>), made on its first uncertain step; null otherwise.</summary>
    public CautiousTrials? Trials { get; set; }
    /// <summary>Whether this step runs a round of <see cref="Trials"/> (a forest over the cached tokens).</summary>
    public bool RunsTrials { get; set; }

    /// <summary>The request's stream: this sequence's chunks and those of the request's other choices.</summary>
    public ChannelReader<GenerationChunk> Output => _output.Reader;
    public bool IsCancelled => _cancelled;

    /// <summary>Ties the request's token to this sequence: a cancel flags it and wakes the scheduler.</summary>
    public void Watch(CancellationToken cancellation, Action wake)
    {
        if (cancellation.CanBeCanceled)
            _registration = cancellation.Register(() => { _cancelled = true; wake(); });
    }

    /// <summary>The consumer stopped reading (cancelled or walked away): the scheduler frees the sequence at its next step.</summary>
    public void Abandon() => _cancelled = true;

    public void Emit(GenerationChunk chunk) => _output.Write(Choice == 0 ? chunk : chunk with { Choice = Choice });

    /// <summary>Ends the stream (with <paramref name="error"/> when the request failed).</summary>
    public void Complete(Exception? error = null)
    {
        if (_finished) return;
        _finished = true;
        _registration.Dispose();
        _output.Close(error);
    }
}
