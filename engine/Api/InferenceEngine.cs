using System.Runtime.CompilerServices;
using System.Text;
using Tessera.Chat;
using Tessera.Generation;
using Tessera.Model;
using Tessera.Serving;

namespace Tessera.Api;

/// <summary>
/// Tessera as a library: load a model once, then generate from prompts or chat messages, streamed as
/// <see cref="IAsyncEnumerable{T}"/>. All requests go through one continuous-batching scheduler: up to
/// <see cref="EngineOptions.MaxSequences"/> run together in each forward step over a shared paged KV cache (a prompt
/// that starts like an earlier one reuses its cached blocks); a cancelled request frees its blocks at the next step.
/// A seeded request gives the same tokens alone or under load.
/// </summary>
public sealed partial class InferenceEngine : IDisposable
{
    private readonly LoadedModel _model;
    private readonly EngineOptions _options;
    private readonly Scheduler _scheduler;
    private readonly ChatFormatter? _chat;
    private readonly string? _chatError;

    private InferenceEngine(LoadedModel model, EngineOptions options)
    {
        _model = model;
        _options = options;
        try { _chat = ChatFormatter.ForTemplate(model.ChatTemplate); }
        catch (NotSupportedException e) { _chatError = e.Message; }
        ContextSize = options.ContextSize > 0 ? options.ContextSize : Math.Min(model.Config.ContextLength, 4096);
        if (ContextSize > model.Config.ContextLength)
            throw new ArgumentException($"ContextSize {ContextSize}: the model supports at most {model.Config.ContextLength}", nameof(options));
        var c = model.Config;
        int bs = options.KvBlockSize;
        KvBlockBytes = bs * c.KvBytesPerPosition;
        int perContext = (ContextSize + bs - 1) / bs;
        int blocks = options.KvBlocks;
        if (blocks == 0)
            blocks = (int)Math.Max(perContext, Math.Min((long)options.MaxSequences * perContext, options.KvCacheBytes / KvBlockBytes));
        else if (blocks < perContext)
            throw new ArgumentException($"KvBlocks {blocks}: one request may hold {ContextSize} tokens, which take {perContext} blocks of {bs}", nameof(options));
        _scheduler = new Scheduler(model.Model, model.Tokenizer,
            new SchedulerLimits(options.MaxSequences, options.MaxTokensPerStep, ContextSize, blocks, bs));
    }

    /// <summary>Tokens one request may hold (prompt and generated).</summary>
    public int ContextSize { get; }

    /// <summary>Requests waiting for their turn (accepted, not generating; preempted ones included).</summary>
    public int QueueLength => _scheduler.QueueLength;

    /// <summary>Requests generating now (admitted by the scheduler, holding KV blocks).</summary>
    public int RunningRequests => _scheduler.RunningSequences;

    /// <summary>Most requests generating at once.</summary>
    public int MaxSequences => _scheduler.Limits.MaxSequences;

    /// <summary>KV blocks held by running requests.</summary>
    public int KvBlocksInUse => _scheduler.KvBlocksInUse;

    /// <summary>KV blocks in the paged cache.</summary>
    public int KvBlocksTotal => _scheduler.Limits.KvBlocks;

    /// <summary>Bytes of one KV block (keys and values of every layer for <see cref="EngineOptions.KvBlockSize"/> positions).</summary>
    public long KvBlockBytes { get; }

    /// <summary>Bytes of KV cache held by running requests.</summary>
    public long KvCacheBytesInUse => KvBlocksInUse * KvBlockBytes;

    /// <summary>Times a request was preempted (its blocks freed, to be recomputed) because the KV cache was full.</summary>
    public long Preemptions => _scheduler.Preemptions;

    /// <summary>Prompt positions run through the model (choices forked from a first one add none).</summary>
    public long PromptTokensComputed => _scheduler.PromptTokensComputed;

    /// <summary>Choices started by forking another's cached prompt (requests with <see cref="GenerationOptions.Choices"/> &gt; 1).</summary>
    public long Forks => _scheduler.Forks;
    /// <summary>Positions that KV budgets (<see cref="GenerationOptions.KvBudget"/>) dropped, all requests together.</summary>
    public long KvDroppedPositions => _scheduler.KvDroppedPositions;

    /// <summary>Prompt tokens served from cached prefix blocks instead of being computed.</summary>
    public long PrefixHitTokens => _scheduler.PrefixHitTokens;

    /// <summary>Draft tokens verified for speculating requests (<see cref="Generation.GenerationOptions.Speculation"/>).</summary>
    public long SpeculativeDraftedTokens => _scheduler.DraftedTokens;

    /// <summary>Draft tokens accepted: each one a forward pass saved.</summary>
    public long SpeculativeAcceptedTokens => _scheduler.AcceptedTokens;

    /// <summary>Cautious NTP's work for every request that asked for it (<see cref="GenerationOptions.Cautious"/>):
    /// uncertain steps, trials sampled, and forward passes beyond one per token (<c>/metrics</c> reports the same).</summary>
    public CautiousStats Cautious => _scheduler.Cautious;

    /// <summary>The scheduler (tests pause it to hold requests mid-stream).</summary>
    internal Scheduler Scheduler => _scheduler;

    /// <summary>The model's hyper-parameters.</summary>
    public LlamaConfig Config => _model.Config;

    /// <summary>The loaded model (its tokenizer checks a draft model's vocabulary).</summary>
    public LoadedModel Loaded => _model;

    /// <summary>Loads a GGUF file or Hugging Face folder on the CPU backend.</summary>
    /// <exception cref="Formats.ModelFormatException">The files are missing or unusable; the message names them.</exception>
    public static Task<InferenceEngine> LoadAsync(string path, EngineOptions? options = null, CancellationToken cancellation = default) =>
        LoadAsync(path, null, options, cancellation);

    /// <summary>Loads a GGUF file or Hugging Face folder on <paramref name="backend"/> (the CPU when null), e.g. a
    /// CUDA backend from <see cref="Backends.BackendFactory.Create"/>: weights, the paged KV cache and every step then
    /// live there. The caller keeps ownership of the backend and disposes it after the engine.</summary>
    /// <exception cref="Formats.ModelFormatException">The files are missing or unusable; the message names them.</exception>
    /// <exception cref="NotSupportedException">The backend cannot run this model's paged cache (the message says why).</exception>
    public static Task<InferenceEngine> LoadAsync(string path, Backends.IBackend? backend, EngineOptions? options = null,
        CancellationToken cancellation = default)
    {
        options ??= new EngineOptions();
        options.Validate();
        return Task.Run(() =>
        {
            // A pool thread: the backend (a CUDA context) is made usable here before the weights are uploaded.
            backend?.UseOnCurrentThread();
            var model = LoadedModel.Load(path, backend);
            try { return new InferenceEngine(model, options); }
            catch { model.Dispose(); throw; }
        }, cancellation);
    }

    /// <summary>Token ids of <paramref name="text"/> (with BOS when <paramref name="addBos"/>).</summary>
    public IReadOnlyList<int> Tokenize(string text, bool addBos = false) => _model.Tokenizer.Encode(text, addBos);

    /// <summary>Text of <paramref name="tokens"/>.</summary>
    public string Detokenize(IReadOnlyList<int> tokens) => _model.Tokenizer.Decode(tokens.ToArray());

    /// <summary>How many tokens <paramref name="text"/> takes as a prompt (BOS included when the model adds it).</summary>
    public int CountTokens(string text) => _model.Tokenizer.Encode(text, _model.Tokenizer.AddBosByDefault).Count;

    /// <summary>The tokens <paramref name="prompt"/> runs as under <paramref name="options"/>: with a
    /// <see cref="GenerationOptions.Suffix"/>, the fill-in-the-middle prompt of the two.</summary>
    /// <exception cref="NotSupportedException">A suffix for a model without fill-in-the-middle tokens.</exception>
    public IReadOnlyList<int> PromptTokens(string prompt, GenerationOptions? options = null) => options?.Suffix is { } suffix
        ? _model.Tokenizer.EncodeInfill(prompt, suffix)
        : _model.Tokenizer.Encode(prompt, _model.Tokenizer.AddBosByDefault);

    /// <summary>How many tokens <paramref name="messages"/> take as a chat prompt in the model's chat format.</summary>
    /// <exception cref="NotSupportedException">The model's chat template is not one Tessera recognises.</exception>
    public int CountTokens(IReadOnlyList<ChatMessage> messages) => EncodeChat(messages).Count;

    /// <summary>The bytes token <paramref name="id"/> stands for (a piece of UTF-8 that may end mid-character).</summary>
    public byte[] TokenBytes(int id) => _model.Tokenizer.GetTokenBytes(id).ToArray();

    /// <summary>Streams the continuation of <paramref name="prompt"/>.</summary>
    public IAsyncEnumerable<GenerationChunk> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(prompt);
        if (options?.Tools is not null) throw new ArgumentException("tools: only a chat (messages) can call tools", nameof(options));
        var tokens = PromptTokens(prompt, options);
        return RunAsync(tokens, options ?? new GenerationOptions(), cancellation);
    }

    /// <summary>Streams the assistant's reply to <paramref name="messages"/>, rendered with the model's chat format.</summary>
    /// <exception cref="NotSupportedException">The model's chat template is not one Tessera recognises.</exception>
    public IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<ChatMessage> messages, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        if (messages.Count == 0) throw new ArgumentException("at least one message is needed", nameof(messages));
        if (options?.Suffix is not null) throw new ArgumentException("suffix: a chat has no fill-in-the-middle prompt; give a prompt", nameof(options));
        var chat = _chat ?? throw new NotSupportedException(_chatError);
        options ??= new GenerationOptions();
        if (options.Tools is not null) (messages, options) = WithTools(messages, options);
        options = options with { StopStrings = [.. options.StopStrings, .. chat.StopStrings] };
        return RunAsync(EncodeChat(messages), options, cancellation);
    }

    private IReadOnlyList<int> EncodeChat(IReadOnlyList<ChatMessage> messages)
    {
        var chat = _chat ?? throw new NotSupportedException(_chatError);
        return _model.Tokenizer.Encode(chat.Render(messages), _model.Tokenizer.AddBosByDefault, parseSpecial: true);
    }

    /// <summary>Generates the whole continuation of <paramref name="prompt"/> and returns it at once.</summary>
    /// <exception cref="ArgumentException"><see cref="GenerationOptions.Choices"/> is more than 1: use
    /// <see cref="CompleteChoicesAsync(string, GenerationOptions?, CancellationToken)"/>.</exception>
    public async Task<GenerationResult> CompleteAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        if (options is { Choices: > 1 })
            throw new ArgumentException($"n {options.Choices}: CompleteAsync returns one choice; use CompleteChoicesAsync", nameof(options));
        return (await CompleteChoicesAsync(prompt, options, cancellation).ConfigureAwait(false))[0];
    }

    /// <summary>Generates <see cref="GenerationOptions.Choices"/> whole continuations of <paramref name="prompt"/>
    /// (the prompt computed once, each choice a fork of its cache with its own seed) and returns them in choice order.</summary>
    public Task<IReadOnlyList<GenerationResult>> CompleteChoicesAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellation = default) =>
        CollectAsync(GenerateAsync(prompt, options, cancellation), options, PromptTokens(prompt, options).Count, tools: false);

    /// <summary>Collects every choice's chunks into results; with tools, a reply that is a call carries it.</summary>
    private static async Task<IReadOnlyList<GenerationResult>> CollectAsync(IAsyncEnumerable<GenerationChunk> chunks, GenerationOptions? options,
        int promptTokens, bool tools)
    {
        int n = options?.Choices ?? 1;
        var text = new StringBuilder[n];
        var ids = new List<int>[n];
        var finish = new FinishReason[n];
        for (int c = 0; c < n; c++) { text[c] = new(); ids[c] = []; finish[c] = FinishReason.MaxTokens; }
        await foreach (var chunk in chunks.ConfigureAwait(false))
        {
            text[chunk.Choice].Append(chunk.Text);
            ids[chunk.Choice].AddRange(chunk.TokenIds);
            if (chunk.FinishReason is { } f) finish[chunk.Choice] = f;
        }
        return [.. Enumerable.Range(0, n).Select(c => new GenerationResult(text[c].ToString(), ids[c], promptTokens, finish[c])
        {
            ToolCall = tools && ToolCallFormat.TryParse(text[c].ToString(), out string name, out string args) ? new ToolCall(name, args) : null,
        })];
    }

    private async IAsyncEnumerable<GenerationChunk> RunAsync(IReadOnlyList<int> prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancellation)
    {
        options.Validate();
        if (options.Constraint is { } grammar) Constraints.TokenConstraint.CheckCanStart(grammar, _model.Tokenizer);
        if (prompt.Count >= ContextSize)
            throw new ArgumentException($"the prompt is {prompt.Count} tokens, which does not fit the context of {ContextSize}", nameof(prompt));
        cancellation.ThrowIfCancellationRequested();
        var seq = _scheduler.Submit(prompt, options, cancellation);
        try
        {
            var output = seq.Output;
            while (await output.WaitToReadAsync(cancellation).ConfigureAwait(false))
                while (output.TryRead(out var chunk))
                {
                    // Chunks may be queued ahead of the reader; a cancelled request stops at once, not after them.
                    cancellation.ThrowIfCancellationRequested();
                    yield return chunk;
                }
        }
        finally
        {
            // A consumer that stops early (cancelled, or simply done reading) frees the sequence at the next step.
            bool wake = false;
            foreach (var s in (IEnumerable<Serving.Sequence>)[seq, .. seq.OtherChoices])
                if (!s.Finished) { s.Abandon(); wake = true; }
            if (wake) _scheduler.Wake();
        }
    }

    /// <summary>Unloads the model.</summary>
    public void Dispose()
    {
        _scheduler.Dispose();
        _model.Dispose();
    }
}
