using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tessera.Api;
using Tessera.Generation;

namespace Tessera.Cli.Server;

/// <summary>Serves <c>POST /v1/completions</c> and <c>POST /v1/chat/completions</c>, streamed (server-sent events)
/// or whole. The request's <see cref="HttpContext.RequestAborted"/> is the generation's cancellation token, so a
/// client that disconnects stops its request at the next token.</summary>
internal sealed class CompletionHandler(InferenceEngine engine, ServerMetrics metrics, string modelId, Tessera.Speculation.SpeculationOptions? speculation = null,
    Tessera.Kv.KvBudgetOptions? kvBudget = null, Tessera.Pruning.PrefillPruningOptions? prefillPruning = null)
{
    private const int DefaultCompletionMaxTokens = 16; // OpenAI's default for /v1/completions
    private static readonly byte[] DataPrefix = "data: "u8.ToArray(), EventEnd = "\n\n"u8.ToArray(), Done = "data: [DONE]\n\n"u8.ToArray();

    // Token Recycling's table, shared by every request of this server (the paper's hot start); made on first use.
    private Tessera.Speculation.SuccessorTable? _successors;

    /// <summary>The request's speculation: its own <c>"speculate"</c> (and <c>"draft_max"</c>, <c>"tree"</c>) over the server's
    /// default; <c>"none"</c> turns it off.</summary>
    private Tessera.Speculation.SpeculationOptions? Speculation(CompletionRequest req)
    {
        var spec = speculation;
        if (req.Speculate is { } name)
        {
            if (name == "none") return null;
            var method = Tessera.Speculation.SpeculationOptions.ParseMethod(name);
            if (method == Tessera.Speculation.SpeculationMethod.Draft && speculation?.DraftModel is null)
                throw new ApiException("speculate draft: the server was started without --draft-model", "speculate");
            spec = (spec ?? new Tessera.Speculation.SpeculationOptions()) with { Method = method, DraftModel = speculation?.DraftModel };
        }
        if (spec is null) return null;
        if (req.DraftMax is { } d) spec = spec with { DraftMax = d };
        bool modelDrafts = spec.Method is Tessera.Speculation.SpeculationMethod.Draft or Tessera.Speculation.SpeculationMethod.Self;
        if (req.Tree is { } tree)
        {
            if (tree == Tessera.Speculation.DraftTreeShape.Dynamic && !modelDrafts)
                throw new ApiException($"tree dynamic grows a tree from a draft model's probabilities: use it with speculate draft or self, not {spec.Method.ToString().ToLowerInvariant()}", "tree");
            spec = spec with { Tree = tree };
        }
        else if (!modelDrafts) spec = spec with { Tree = Tessera.Speculation.DraftTreeShape.Static };  // the server's dynamic default is for model drafts
        if (spec.Method == Tessera.Speculation.SpeculationMethod.Recycle && spec.Successors is null)
            spec = spec with { Successors = LazyInitializer.EnsureInitialized(ref _successors, () => new Tessera.Speculation.SuccessorTable(engine.Config.VocabSize)) };
        return spec;
    }

    public async Task HandleAsync(HttpContext ctx, bool isChat)
    {
        long arrival = Stopwatch.GetTimestamp();
        string endpoint = isChat ? "/v1/chat/completions" : "/v1/completions";
        var aborted = ctx.RequestAborted;
        int status = 200;
        try
        {
            using var doc = await ParseBody(ctx.Request, aborted).ConfigureAwait(false);
            var req = CompletionRequest.Parse(doc.RootElement, isChat);
            int promptTokens = CountPrompt(req);
            if (promptTokens >= engine.ContextSize)
                throw new ApiException($"the prompt is {promptTokens} tokens, which does not fit the context of {engine.ContextSize} tokens",
                    isChat ? "messages" : "prompt");
            var options = req.ToOptions(isChat ? engine.ContextSize - promptTokens : DefaultCompletionMaxTokens)
                with { Speculation = Speculation(req), PrefillPruning = req.PrefillPruning ?? prefillPruning };
            // The server's default budget and pruning apply to the requests they can serve; a request's own fields
            // always apply (and a clash then names them).
            bool own = req.Kv.Budget is not null || req.Kv.Policy is not null || req.Kv.Sinks is not null;
            bool fits = options.Speculation is null && options.Cautious is null && !options.PromptLogProbs && options.Choices == 1;
            if (req.PrefillPruning is null && options.PrefillPruning is not null && !(fits && (own ? req.Kv.Budget == 0 : kvBudget is null)))
                options = options with { PrefillPruning = null };
            options = options with { KvBudget = own || (fits && options.PrefillPruning is null) ? req.KvBudget(kvBudget) : null };
            if (options.Sampling.LogitBias is { } bias)
                foreach (int token in bias.Keys)
                    if (token >= engine.Config.VocabSize)
                        throw new ApiException($"logit_bias: token {token} is outside the vocabulary (0..{engine.Config.VocabSize - 1})", "logit_bias");
            try { options.Validate(); }
            catch (ArgumentException e) { throw new ApiException(e.Message, e.ParamName switch
            {
                nameof(options.Cautious) => "cautious",
                nameof(options.PromptLogProbs) => "echo",
                nameof(options.Suffix) => "suffix",
                nameof(options.KvBudget) => "kv_budget",
                nameof(options.PrefillPruning) => "prefill_pruning",
                var other => other,
            }); }
            if (options.Constraint is { } grammar)
            {
                try { Tessera.Constraints.TokenConstraint.CheckCanStart(grammar, engine.Loaded.Tokenizer); }
                catch (ArgumentException e) { throw new ApiException(e.Message, grammar.Source == "json object" ? "response_format" : grammar.Source); }
            }
            if (options.Choices > engine.MaxSequences)
                throw new ApiException($"n {options.Choices}: more choices than the server runs at once (--parallel {engine.MaxSequences})", "n");

            // No admission here: the engine's scheduler queues the request and batches it with the running ones.
            {
                metrics.PromptTokens(promptTokens);
                var chunks = isChat ? engine.GenerateAsync(req.Messages!, options, aborted) : engine.GenerateAsync(req.Prompt!, options, aborted);
                var run = new Run(req, req.Model ?? modelId, promptTokens, arrival);
                await using var e = chunks.GetAsyncEnumerator(aborted);
                // The first chunk comes before any header is sent, so that a request the engine refuses is still a 400.
                bool any;
                try { any = await e.MoveNextAsync().ConfigureAwait(false); }
                catch (ArgumentException ex) { throw new ApiException(ex.Message, isChat ? "messages" : "prompt"); }
                if (req.Stream) await StreamAsync(ctx, run, e, any).ConfigureAwait(false);
                else await WholeAsync(ctx, run, e, any).ConfigureAwait(false);
            }
        }
        catch (ApiException ex)
        {
            status = ex.Status;
            if (!ctx.Response.HasStarted) await WriteError(ctx.Response, ex.Status, ex.Message, ex.Type, ex.Param).ConfigureAwait(false);
        }
        catch (NotSupportedException ex) when (!ctx.Response.HasStarted)
        {
            status = 400; // a chat request to a model whose chat template is unknown
            await WriteError(ctx.Response, 400, ex.Message, "invalid_request_error", "messages").ConfigureAwait(false);
        }
        catch (Exception) when (aborted.IsCancellationRequested)
        {
            // The client went away: cancellation, or a write to the closed connection failing first.
            status = 499; // client closed the request (nginx's code); nothing can be sent
            metrics.Cancelled();
        }
        finally
        {
            metrics.Request(endpoint, status);
        }
    }

    private int CountPrompt(CompletionRequest req)
    {
        try { return req.IsChat ? engine.CountTokens(req.Messages!) : engine.PromptTokens(req.Prompt!, new GenerationOptions { Suffix = req.Suffix }).Count; }
        catch (NotSupportedException e) { throw new ApiException(e.Message, req.IsChat ? "messages" : "suffix"); }
    }

    private static async Task<JsonDocument> ParseBody(HttpRequest request, CancellationToken cancellation)
    {
        try { return await JsonDocument.ParseAsync(request.Body, default, cancellation).ConfigureAwait(false); }
        catch (JsonException e) { throw new ApiException($"the request body is not valid JSON: {e.Message}", null); }
    }

    /// <summary>One request's identity and running totals.</summary>
    private sealed class Run(CompletionRequest req, string model, int promptTokens, long arrival)
    {
        public CompletionRequest Req { get; } = req;
        public string Model { get; } = model;
        public int PromptTokens { get; } = promptTokens;
        public string Id { get; } = (req.IsChat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        public long Arrival { get; } = arrival;
        public int Completion { get; set; }
        /// <summary>Per choice: characters streamed so far (completions' logprobs text_offset), and whether its
        /// first chat delta (the one with the role) was sent.</summary>
        public int[] TextOffset { get; } = new int[req.Choices];
        public bool[] Started { get; } = new bool[req.Choices];
        public bool SawFirstToken { get; set; }
        /// <summary>The echoed prompt's log-probabilities (echo with logprobs), once they arrived.</summary>
        public OpenAiJson.PromptScore? Prompt { get; set; }
    }

    /// <summary>The prompt's scores from the chunk that carries them: BOS is not part of the echoed text and is left
    /// out; without one, the first token is reported with no log-probability.</summary>
    private void TakePromptScore(Run run, GenerationChunk c)
    {
        if (c.PromptLogProbs is not { } scores || run.Req.Prompt is null) return;
        var tok = engine.Loaded.Tokenizer;
        var ids = engine.Tokenize(run.Req.Prompt, tok.AddBosByDefault);
        int first = ids[0];
        bool bos = first == tok.BosId && tok.AddBosByDefault;
        int pieces = 0;
        for (int i = bos ? 1 : 0; i < ids.Count; i++) pieces += OpenAiJson.Piece(engine, ids[i]).Length;
        run.Prompt = new OpenAiJson.PromptScore(bos ? null : first, scores, run.Req.Prompt.Length, Math.Max(0, pieces - run.Req.Prompt.Length));
    }

    private void Count(Run run, GenerationChunk c)
    {
        if (c.TokenIds.Count == 0) return;
        if (!run.SawFirstToken)
        {
            run.SawFirstToken = true;
            metrics.FirstToken(Stopwatch.GetElapsedTime(run.Arrival));
        }
        run.Completion += c.TokenIds.Count;
        metrics.Generated(c.TokenIds.Count);
    }

    private async Task WholeAsync(HttpContext ctx, Run run, IAsyncEnumerator<GenerationChunk> e, bool any)
    {
        int n = run.Req.Choices;
        var text = new StringBuilder[n];
        var lps = new List<TokenLogProb>?[n];
        var finish = new FinishReason[n];
        for (int i = 0; i < n; i++)
        {
            text[i] = new StringBuilder();
            lps[i] = run.Req.LogProbs is null ? null : [];
            finish[i] = FinishReason.MaxTokens;
        }
        for (bool more = any; more; more = await e.MoveNextAsync().ConfigureAwait(false))
        {
            var c = e.Current;
            Count(run, c);
            TakePromptScore(run, c);
            text[c.Choice].Append(c.Text);
            lps[c.Choice]?.AddRange(c.LogProbs);
            if (c.FinishReason is { } f) finish[c.Choice] = f;
        }
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            OpenAiJson.Head(w, run.Id, run.Req.IsChat ? "chat.completion" : "text_completion", run.Created, run.Model);
            w.WriteStartArray("choices");
            for (int i = 0; i < n; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("index", i);
                string reply = text[i].ToString();
                bool call = false;
                if (run.Req.IsChat)
                {
                    w.WriteStartObject("message");
                    w.WriteString("role", "assistant");
                    if (run.Req.Tools.Count > 0 && Tessera.Chat.ToolCallFormat.TryParse(reply, out string name, out string arguments))
                    {
                        call = true;
                        w.WriteNull("content");
                        w.WriteStartArray("tool_calls");
                        WriteCall(w, 0, "call_" + Guid.NewGuid().ToString("N")[..24], name, arguments);
                        w.WriteEndArray();
                    }
                    else w.WriteString("content", reply);
                    w.WriteEndObject();
                    OpenAiJson.ChatLogProbs(w, engine, lps[i]);
                }
                else
                {
                    w.WriteString("text", run.Req.Echo ? run.Req.Prompt + text[i] : text[i].ToString());
                    OpenAiJson.CompletionLogProbs(w, engine, lps[i], 0, run.Prompt);
                }
                if (call && finish[i] == FinishReason.EndOfGeneration) w.WriteString("finish_reason", "tool_calls");
                else OpenAiJson.Finish(w, finish[i]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            OpenAiJson.Usage(w, run.PromptTokens, run.Completion);
            w.WriteEndObject();
        }
        ctx.Response.ContentType = "application/json";
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>One entry of <c>tool_calls</c>: the whole call, or (streaming) its first delta or a later fragment.</summary>
    private static void WriteCall(System.Text.Json.Utf8JsonWriter w, int index, string? id, string? name, string? arguments)
    {
        w.WriteStartObject();
        w.WriteNumber("index", index);
        if (id is not null) { w.WriteString("id", id); w.WriteString("type", "function"); }
        w.WriteStartObject("function");
        if (name is not null) w.WriteString("name", name);
        if (arguments is not null) w.WriteString("arguments", arguments);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private async Task StreamAsync(HttpContext ctx, Run run, IAsyncEnumerator<GenerationChunk> e, bool any)
    {
        var response = ctx.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        var buffer = new ArrayBufferWriter<byte>();
        using var w = new Utf8JsonWriter(buffer);
        var tools = run.Req.IsChat && run.Req.Tools.Count > 0 && run.Req.ToolChoice != Tessera.Chat.ToolChoice.None
            ? Enumerable.Range(0, run.Req.Choices).Select(_ => new ToolCallStream(run.Req.Tools)).ToArray() : null;
        for (bool more = any; more; more = await e.MoveNextAsync().ConfigureAwait(false))
        {
            var c = e.Current;
            Count(run, c);
            TakePromptScore(run, c);
            bool first = !run.Started[c.Choice];
            (string? Content, string? Name, string? Arguments) piece = (c.Text, null, null);
            if (tools is not null)
            {
                piece = tools[c.Choice].Add(c.Text, c.FinishReason is not null);
                if (piece.Content is null && piece.Arguments is null && c.FinishReason is null && !first) continue;
            }
            // Chunks with nothing to say (an incomplete character held back) are not sent, except the last.
            else if (c.Text.Length == 0 && c.FinishReason is null && (run.Req.LogProbs is null || c.LogProbs.Count == 0) && !(first && run.Req.IsChat)
                && c.PromptLogProbs is null)
                continue;
            w.WriteStartObject();
            OpenAiJson.Head(w, run.Id, run.Req.IsChat ? "chat.completion.chunk" : "text_completion", run.Created, run.Model);
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", c.Choice);
            var lps = run.Req.LogProbs is null ? null : c.LogProbs;
            if (run.Req.IsChat)
            {
                w.WriteStartObject("delta");
                if (first) w.WriteString("role", "assistant");
                if (tools is not null && (piece.Name is not null || piece.Arguments is not null))
                {
                    var call = tools[c.Choice];
                    w.WriteStartArray("tool_calls");
                    WriteCall(w, 0, piece.Name is not null ? call.Id : null, piece.Name, piece.Arguments);
                    w.WriteEndArray();
                }
                else if (piece.Content is { Length: > 0 } || (c.FinishReason is null && piece.Content is not null)) w.WriteString("content", piece.Content);
                w.WriteEndObject();
                OpenAiJson.ChatLogProbs(w, engine, lps);
            }
            else
            {
                w.WriteString("text", run.Req.Echo && first ? run.Req.Prompt + c.Text : c.Text);
                // Each choice's first chunk echoes the prompt: its text, and with logprobs its tokens' scores.
                OpenAiJson.CompletionLogProbs(w, engine, lps, run.TextOffset[c.Choice], run.Req.Echo && first ? run.Prompt : null);
                run.TextOffset[c.Choice] += (run.Req.Echo && first ? run.Req.Prompt!.Length : 0) + c.Text.Length;  // as the whole reply counts
            }
            if (tools is not null && tools[c.Choice].IsCall && c.FinishReason == FinishReason.EndOfGeneration) w.WriteString("finish_reason", "tool_calls");
            else OpenAiJson.Finish(w, c.FinishReason);
            w.WriteEndObject();
            w.WriteEndArray();
            if (run.Req.IncludeUsage) w.WriteNull("usage");
            w.WriteEndObject();
            run.Started[c.Choice] = true;
            await SendEvent(response, buffer, w, ctx.RequestAborted).ConfigureAwait(false);
        }
        if (run.Req.IncludeUsage)
        {
            // OpenAI's stream_options.include_usage: a last chunk with empty choices and the totals.
            w.WriteStartObject();
            OpenAiJson.Head(w, run.Id, run.Req.IsChat ? "chat.completion.chunk" : "text_completion", run.Created, run.Model);
            w.WriteStartArray("choices");
            w.WriteEndArray();
            OpenAiJson.Usage(w, run.PromptTokens, run.Completion);
            w.WriteEndObject();
            await SendEvent(response, buffer, w, ctx.RequestAborted).ConfigureAwait(false);
        }
        await response.Body.WriteAsync(Done, ctx.RequestAborted).ConfigureAwait(false);
    }

    private static async Task SendEvent(HttpResponse response, ArrayBufferWriter<byte> buffer, Utf8JsonWriter w, CancellationToken cancellation)
    {
        w.Flush();
        await response.Body.WriteAsync(DataPrefix, cancellation).ConfigureAwait(false);
        await response.Body.WriteAsync(buffer.WrittenMemory, cancellation).ConfigureAwait(false);
        await response.Body.WriteAsync(EventEnd, cancellation).ConfigureAwait(false);
        await response.Body.FlushAsync(cancellation).ConfigureAwait(false);
        buffer.ResetWrittenCount();
        w.Reset();
    }

    public static async Task WriteError(HttpResponse response, int status, string message, string type, string? param)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) OpenAiJson.Error(w, message, type, param);
        response.StatusCode = status;
        response.ContentType = "application/json";
        await response.Body.WriteAsync(buffer.WrittenMemory).ConfigureAwait(false);
    }
}
