using System.Runtime.CompilerServices;
using System.Text;
using Tessera.Chat;
using Tessera.Generation;
using Tessera.Model;

namespace Tessera.Api;

/// <summary>
/// Tessera as a library: load a model once, then generate from prompts or chat messages, streamed as
/// <see cref="IAsyncEnumerable{T}"/>. The weights are shared by all requests; each request has its own KV cache.
/// Requests currently run one at a time in arrival order (continuous batching of many sequences comes with the
/// scheduler); a cancelled request stops at its next token and frees its cache.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    private readonly LoadedModel _model;
    private readonly EngineOptions _options;
    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly ChatFormatter? _chat;
    private readonly string? _chatError;
    private int _queued, _running;

    private InferenceEngine(LoadedModel model, EngineOptions options)
    {
        _model = model;
        _options = options;
        try { _chat = ChatFormatter.ForTemplate(model.ChatTemplate); }
        catch (NotSupportedException e) { _chatError = e.Message; }
        ContextSize = options.ContextSize > 0 ? options.ContextSize : Math.Min(model.Config.ContextLength, 4096);
        if (ContextSize > model.Config.ContextLength)
            throw new ArgumentException($"ContextSize {ContextSize}: the model supports at most {model.Config.ContextLength}", nameof(options));
    }

    /// <summary>Tokens one request may hold (prompt and generated).</summary>
    public int ContextSize { get; }

    /// <summary>Requests waiting for their turn (accepted, not yet generating).</summary>
    public int QueueLength => Volatile.Read(ref _queued);

    /// <summary>Requests generating now.</summary>
    public int RunningRequests => Volatile.Read(ref _running);

    /// <summary>Bytes of KV cache held by running requests (each holds a cache of <see cref="ContextSize"/>
    /// positions until paged blocks arrive with the scheduler).</summary>
    public long KvCacheBytesInUse => RunningRequests * KvCacheBytesPerRequest;

    private long KvCacheBytesPerRequest => 2L * Config.Layers * ContextSize * Config.KvDim * sizeof(ushort); // K and V, fp16

    /// <summary>The model's hyper-parameters.</summary>
    public LlamaConfig Config => _model.Config;

    /// <summary>Loads a GGUF file or Hugging Face folder on the CPU backend.</summary>
    /// <exception cref="Formats.ModelFormatException">The files are missing or unusable; the message names them.</exception>
    public static Task<InferenceEngine> LoadAsync(string path, EngineOptions? options = null, CancellationToken cancellation = default)
    {
        options ??= new EngineOptions();
        options.Validate();
        return Task.Run(() =>
        {
            var model = LoadedModel.Load(path);
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

    /// <summary>How many tokens <paramref name="messages"/> take as a chat prompt in the model's chat format.</summary>
    /// <exception cref="NotSupportedException">The model's chat template is not one Tessera recognises.</exception>
    public int CountTokens(IReadOnlyList<ChatMessage> messages) => EncodeChat(messages).Count;

    /// <summary>The bytes token <paramref name="id"/> stands for (a piece of UTF-8 that may end mid-character).</summary>
    public byte[] TokenBytes(int id) => _model.Tokenizer.GetTokenBytes(id).ToArray();

    /// <summary>Streams the continuation of <paramref name="prompt"/>.</summary>
    public IAsyncEnumerable<GenerationChunk> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(prompt);
        var tokens = _model.Tokenizer.Encode(prompt, _model.Tokenizer.AddBosByDefault);
        return RunAsync(tokens, options ?? new GenerationOptions(), cancellation);
    }

    /// <summary>Streams the assistant's reply to <paramref name="messages"/>, rendered with the model's chat format.</summary>
    /// <exception cref="NotSupportedException">The model's chat template is not one Tessera recognises.</exception>
    public IAsyncEnumerable<GenerationChunk> GenerateAsync(IReadOnlyList<ChatMessage> messages, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        if (messages.Count == 0) throw new ArgumentException("at least one message is needed", nameof(messages));
        var chat = _chat ?? throw new NotSupportedException(_chatError);
        options ??= new GenerationOptions();
        options = options with { StopStrings = [.. options.StopStrings, .. chat.StopStrings] };
        return RunAsync(EncodeChat(messages), options, cancellation);
    }

    private IReadOnlyList<int> EncodeChat(IReadOnlyList<ChatMessage> messages)
    {
        var chat = _chat ?? throw new NotSupportedException(_chatError);
        return _model.Tokenizer.Encode(chat.Render(messages), _model.Tokenizer.AddBosByDefault, parseSpecial: true);
    }

    /// <summary>Generates the whole continuation of <paramref name="prompt"/> and returns it at once.</summary>
    public async Task<GenerationResult> CompleteAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        var text = new StringBuilder();
        var ids = new List<int>();
        FinishReason finish = FinishReason.MaxTokens;
        await foreach (var chunk in GenerateAsync(prompt, options, cancellation).ConfigureAwait(false))
        {
            text.Append(chunk.Text);
            ids.AddRange(chunk.TokenIds);
            if (chunk.FinishReason is { } f) finish = f;
        }
        return new GenerationResult(text.ToString(), ids, CountTokens(prompt), finish);
    }

    private async IAsyncEnumerable<GenerationChunk> RunAsync(IReadOnlyList<int> prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancellation)
    {
        options.Validate();
        if (prompt.Count >= ContextSize)
            throw new ArgumentException($"the prompt is {prompt.Count} tokens, which does not fit the context of {ContextSize}", nameof(prompt));
        Interlocked.Increment(ref _queued);
        try { await _turn.WaitAsync(cancellation).ConfigureAwait(false); }
        finally { Interlocked.Decrement(ref _queued); }
        Interlocked.Increment(ref _running);
        try
        {
            // Generation is CPU-bound; run it off the caller's thread, one token per step so that cancellation and
            // the consumer's pace are honoured between tokens.
            using var state = _model.Model.CreateState(ContextSize);
            var stats = new GenerationStats();
            using var steps = new TextGenerator(_model.Model, _model.Tokenizer)
                .Generate(state, prompt, options, stats, cancellation).GetEnumerator();
            while (await Task.Run(steps.MoveNext, cancellation).ConfigureAwait(false))
            {
                var s = steps.Current;
                yield return new GenerationChunk(s.Text, s.Token >= 0 ? [s.Token] : [], null)
                {
                    LogProbs = s.LogProb is { } lp ? [lp] : [],
                };
            }
            yield return new GenerationChunk("", [], stats.FinishReason);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
            _turn.Release();
        }
    }

    /// <summary>Unloads the model.</summary>
    public void Dispose()
    {
        _model.Dispose();
        _turn.Dispose();
    }
}
