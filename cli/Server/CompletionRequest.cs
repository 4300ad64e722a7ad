using System.Text.Json;
using Tessera.Chat;
using Tessera.Generation;
using Tessera.Sampling;

namespace Tessera.Cli.Server;

/// <summary>A parsed <c>/v1/completions</c> or <c>/v1/chat/completions</c> body. Parsing checks every field it
/// knows (type and range) and throws <see cref="ApiException"/> naming the field; unknown fields are ignored, as
/// OpenAI clients send extras.</summary>
internal sealed class CompletionRequest
{
    public required bool IsChat { get; init; }
    public string? Model { get; init; }
    public string? Prompt { get; init; }
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    /// <summary>Null: the server's default for the endpoint.</summary>
    public int? MaxTokens { get; init; }
    public required SamplingOptions Sampling { get; init; }
    public required IReadOnlyList<string> Stop { get; init; }
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    public bool IgnoreEos { get; init; }
    /// <summary>Tessera's <c>special</c>: render control tokens and spelled-out end markers (as <c>--special</c>).</summary>
    public bool Special { get; init; }
    /// <summary>OpenAI's <c>echo</c> (completions): the prompt is returned before the completion.</summary>
    public bool Echo { get; init; }
    /// <summary>Tessera's <c>token_healing</c> (as <c>--token-healing</c>).</summary>
    public bool TokenHealing { get; init; }
    /// <summary>Tessera's extension: <c>"kv_budget": N</c> (0 turns the server's default off), <c>"kv_policy"</c>
    /// (window, h2o, keyformer, snapkv), <c>"kv_sinks"</c>: a cap on this request's KV cache; null fields take the
    /// server's <c>--kv-budget</c> settings.</summary>
    public (int? Budget, string? Policy, int? Sinks) Kv { get; init; }
    /// <summary>Tessera's extension: <c>"prefill_pruning": "lazyllm"|"spatten"</c> with <c>"keep"</c>.</summary>
    public Tessera.Pruning.PrefillPruningOptions? PrefillPruning { get; init; }

    /// <summary>Tessera's extension: <c>"cautious": true</c> decodes with Cautious NTP, <c>"cautious_trials"</c> (1 to 16,
    /// default 10) the most trials at an uncertain step; null when not asked for.</summary>
    public Tessera.Generation.CautiousOptions? Cautious { get; init; }
    /// <summary>Completions: the text after the insertion (OpenAI's <c>suffix</c>); null or empty for none.</summary>
    public string? Suffix { get; init; }
    /// <summary>Null: no log-probabilities; otherwise how many alternatives per token.</summary>
    public int? LogProbs { get; init; }
    /// <summary>The request's tools (chat), and whether they may be called.</summary>
    public IReadOnlyList<Tessera.Chat.ToolDefinition> Tools { get; init; } = [];
    public Tessera.Chat.ToolChoice ToolChoice { get; init; }
    /// <summary>The grammar from <c>response_format</c>, <c>grammar</c> or <c>json_schema</c>; null for free text.</summary>
    public Tessera.Constraints.Grammar? Constraint { get; init; }
    /// <summary>OpenAI's <c>n</c>: choices to generate (1 to 16).</summary>
    public int Choices { get; init; } = 1;
    /// <summary>Tessera's extension: <c>"speculate"</c> (lookup, recycle, self, draft, none); null: the server's default.</summary>
    public string? Speculate { get; init; }
    /// <summary>Tessera's extension: <c>"draft_max"</c>, the most draft tokens per verification pass.</summary>
    public int? DraftMax { get; init; }
    /// <summary>Tessera's extension: <c>"tree"</c> (static, dynamic), the drafts' shape; null: the server's default.</summary>
    public Tessera.Speculation.DraftTreeShape? Tree { get; init; }

    public static CompletionRequest Parse(JsonElement root, bool isChat)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ApiException("the request body must be a JSON object", null);
        string? prompt = null;
        IReadOnlyList<ChatMessage>? messages = null;
        var (tools, toolChoice, forcedTool) = isChat ? ParseTools(root) : ([], Tessera.Chat.ToolChoice.None, null);
        if (isChat) messages = Tessera.Chat.ToolCallFormat.WithTools(ParseMessages(Required(root, "messages")), toolChoice == Tessera.Chat.ToolChoice.None ? [] : tools);
        else prompt = ParsePrompt(Required(root, "prompt"));

        int n = Int(root, "n") ?? 1;
        if (n is < 1 or > GenerationOptions.MaxChoices) throw new ApiException($"n {n}: must be 1 to {GenerationOptions.MaxChoices} choices", "n");
        int? bestOf = Int(root, "best_of");
        if (bestOf is not null and not 1) throw new ApiException($"best_of {bestOf}: only 1 is supported", "best_of");
        bool echo = !isChat && Bool(root, "echo") == true;

        float temperature = Number(root, "temperature") ?? 1f;
        if (!(temperature >= 0 && temperature <= 2)) throw new ApiException($"temperature {temperature}: must be in [0, 2]", "temperature");
        float topP = Number(root, "top_p") ?? 1f;
        if (!(topP > 0 && topP <= 1)) throw new ApiException($"top_p {topP}: must be in (0, 1]", "top_p");
        float frequency = Number(root, "frequency_penalty") ?? 0f, presence = Number(root, "presence_penalty") ?? 0f;
        if (frequency is < -2 or > 2) throw new ApiException($"frequency_penalty {frequency}: must be in [-2, 2]", "frequency_penalty");
        if (presence is < -2 or > 2) throw new ApiException($"presence_penalty {presence}: must be in [-2, 2]", "presence_penalty");
        string maxName = isChat && Has(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        int? maxTokens = Int(root, maxName);
        if (maxTokens < 0) throw new ApiException($"{maxName} {maxTokens}: must be 0 or more", maxName);
        long? seed = Long(root, "seed");

        int? logprobs;
        if (isChat)
        {
            int? top = Int(root, "top_logprobs");
            if (top is < 0 or > 20) throw new ApiException($"top_logprobs {top}: must be 0 to 20", "top_logprobs");
            bool want = Bool(root, "logprobs") ?? false;
            if (top is not null && !want) throw new ApiException("top_logprobs needs logprobs: true", "top_logprobs");
            logprobs = want ? top ?? 0 : null;
        }
        else
        {
            logprobs = Int(root, "logprobs");
            if (logprobs is < 0 or > 5) throw new ApiException($"logprobs {logprobs}: must be 0 to 5", "logprobs");
        }

        bool stream = Bool(root, "stream") ?? false;
        bool includeUsage = false;
        if (Has(root, "stream_options") && root.GetProperty("stream_options") is { ValueKind: not JsonValueKind.Null } so)
        {
            if (so.ValueKind != JsonValueKind.Object) throw new ApiException("stream_options: must be an object", "stream_options");
            includeUsage = Bool(so, "include_usage", "stream_options.include_usage") ?? false;
        }

        return new CompletionRequest
        {
            IsChat = isChat,
            Model = String(root, "model"),
            Prompt = prompt,
            Messages = messages,
            MaxTokens = maxTokens,
            // OpenAI's sampling: temperature and nucleus only (no top-k or min-p, which llama.cpp adds by default).
            Sampling = new SamplingOptions
            {
                Temperature = temperature, TopP = topP, TopK = 0, MinP = 0,
                FrequencyPenalty = frequency, PresencePenalty = presence,
                Seed = seed is { } s ? unchecked((ulong)s) : null,
                LogitBias = ParseLogitBias(root),
            },
            Stop = ParseStop(root),
            Stream = stream,
            IncludeUsage = includeUsage,
            IgnoreEos = Bool(root, "ignore_eos") ?? false,
            Special = Bool(root, "special") ?? false,
            TokenHealing = Bool(root, "token_healing") ?? false,
            Cautious = ParseCautious(root),
            Kv = (Int(root, "kv_budget"), String(root, "kv_policy"), Int(root, "kv_sinks")),
            PrefillPruning = ParsePruning(root),
            Suffix = isChat ? null : String(root, "suffix") is { Length: > 0 } suffix ? suffix : null,
            Echo = echo,
            LogProbs = logprobs,
            Choices = n,
            Speculate = ParseSpeculate(root),
            DraftMax = Int(root, "draft_max") is { } dm && dm is < 1 or > Tessera.Speculation.SpeculationOptions.MaxDraft
                ? throw new ApiException($"draft_max {dm}: must be 1 to {Tessera.Speculation.SpeculationOptions.MaxDraft}", "draft_max")
                : Int(root, "draft_max"),
            Tree = String(root, "tree") is { } tree ? ParseTree(tree) : null,
            Constraint = MergeConstraint(ParseConstraint(root), tools, toolChoice, forcedTool),
            Tools = tools,
            ToolChoice = toolChoice,
        };
    }

    /// <summary>The tools' call grammar, unless the request has no tools to call (one constraint per request).</summary>
    private static Tessera.Constraints.Grammar? MergeConstraint(Tessera.Constraints.Grammar? format, List<Tessera.Chat.ToolDefinition> tools,
        Tessera.Chat.ToolChoice choice, string? forced)
    {
        if (tools.Count == 0 || choice == Tessera.Chat.ToolChoice.None) return format;
        if (format is not null) throw new ApiException("response_format together with tools: give one (a tool call's arguments follow the tool's schema)", "response_format");
        try { return Tessera.Chat.ToolCallFormat.Grammar(tools, choice, forced); }
        catch (FormatException e) { throw new ApiException(e.Message, e.Message.StartsWith("tool_choice", StringComparison.Ordinal) ? "tool_choice" : "tools"); }
    }

    /// <summary>OpenAI's <c>tools</c> (functions with a JSON Schema of parameters) and <c>tool_choice</c>
    /// (<c>auto</c>, the default with tools; <c>none</c>; <c>required</c>; or <c>{"type": "function", "function": {"name"}}</c>).</summary>
    private static (List<Tessera.Chat.ToolDefinition>, Tessera.Chat.ToolChoice, string?) ParseTools(JsonElement root)
    {
        var tools = new List<Tessera.Chat.ToolDefinition>();
        if (root.TryGetProperty("tools", out var t) && t.ValueKind != JsonValueKind.Null)
        {
            if (t.ValueKind != JsonValueKind.Array) throw WrongType("tools", "an array of {\"type\": \"function\", \"function\": {...}}");
            int i = 0;
            foreach (var tool in t.EnumerateArray())
            {
                string at = $"tools[{i++}]";
                if (tool.ValueKind != JsonValueKind.Object || String(tool, "type", $"{at}.type") != "function")
                    throw new ApiException($"{at}: must be {{\"type\": \"function\", \"function\": {{...}}}}", $"{at}.type");
                if (!tool.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object)
                    throw new ApiException($"{at}.function: is required (an object with name and parameters)", $"{at}.function");
                string name = String(f, "name", $"{at}.function.name") ?? throw new ApiException($"{at}.function.name: is required", $"{at}.function.name");
                string parameters = "{\"type\": \"object\", \"properties\": {}}";
                if (f.TryGetProperty("parameters", out var p) && p.ValueKind != JsonValueKind.Null)
                {
                    if (p.ValueKind != JsonValueKind.Object) throw new ApiException($"{at}.function.parameters: must be a JSON Schema object", $"{at}.function.parameters");
                    parameters = p.GetRawText();
                }
                tools.Add(new Tessera.Chat.ToolDefinition(name, String(f, "description", $"{at}.function.description"), parameters));
            }
            try { Tessera.Chat.ToolCallFormat.Validate(tools); }
            catch (FormatException e)
            {
                string param = e.Message.StartsWith("tools[", StringComparison.Ordinal) ? e.Message[..e.Message.IndexOfAny([' ', ':'])] : "tools";
                throw new ApiException(e.Message, param);
            }
        }
        var choice = tools.Count > 0 ? Tessera.Chat.ToolChoice.Auto : Tessera.Chat.ToolChoice.None;
        string? forced = null;
        if (root.TryGetProperty("tool_choice", out var c) && c.ValueKind != JsonValueKind.Null)
        {
            if (c.ValueKind == JsonValueKind.String)
                choice = c.GetString() switch
                {
                    "auto" => Tessera.Chat.ToolChoice.Auto,
                    "none" => Tessera.Chat.ToolChoice.None,
                    "required" => Tessera.Chat.ToolChoice.Required,
                    var other => throw new ApiException($"tool_choice '{other}': must be auto, none, required or a named function", "tool_choice"),
                };
            else if (c.ValueKind == JsonValueKind.Object && c.TryGetProperty("function", out var cf) && cf.ValueKind == JsonValueKind.Object
                && String(cf, "name", "tool_choice.function.name") is { } named)
            {
                choice = Tessera.Chat.ToolChoice.Required;
                forced = named;
            }
            else throw WrongType("tool_choice", "\"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}");
            if (choice != Tessera.Chat.ToolChoice.None && tools.Count == 0)
                throw new ApiException("tool_choice: there are no tools to call", "tool_choice");
        }
        return (tools, choice, forced);
    }

    /// <summary>OpenAI's <c>response_format</c> (<c>text</c>, <c>json_object</c>, <c>json_schema</c>) or llama.cpp's
    /// <c>grammar</c> (GBNF text) and <c>json_schema</c> (a schema object): the grammar the output must follow.</summary>
    private static Tessera.Constraints.Grammar? ParseConstraint(JsonElement root)
    {
        var found = new List<(string Param, Func<Tessera.Constraints.Grammar?> Make)>();
        if (root.TryGetProperty("response_format", out var rf) && rf.ValueKind != JsonValueKind.Null)
        {
            if (rf.ValueKind != JsonValueKind.Object) throw WrongType("response_format", "an object with a type");
            string type = String(rf, "type", "response_format.type") ?? throw new ApiException("response_format.type is required", "response_format.type");
            switch (type)
            {
                case "text": break;
                case "json_object": found.Add(("response_format", () => Tessera.Constraints.Grammar.AnyJsonObject)); break;
                case "json_schema":
                    if (!rf.TryGetProperty("json_schema", out var js) || js.ValueKind != JsonValueKind.Object)
                        throw new ApiException("response_format.json_schema is required (an object with name and schema)", "response_format.json_schema");
                    if (!js.TryGetProperty("schema", out var schema) || schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True))
                        throw new ApiException("response_format.json_schema.schema is required (a JSON Schema object)", "response_format.json_schema.schema");
                    string raw = schema.GetRawText();
                    found.Add(("response_format.json_schema.schema", () => Tessera.Constraints.Grammar.FromJsonSchema(raw, "response_format.json_schema.schema")));
                    break;
                default: throw new ApiException($"response_format.type '{type}': must be text, json_object or json_schema", "response_format.type");
            }
        }
        if (String(root, "grammar") is { } gbnf) found.Add(("grammar", () => Tessera.Constraints.Grammar.ParseGbnf(gbnf, "grammar")));
        if (root.TryGetProperty("json_schema", out var top) && top.ValueKind != JsonValueKind.Null)
        {
            if (top.ValueKind != JsonValueKind.Object) throw WrongType("json_schema", "a JSON Schema object");
            string raw = top.GetRawText();
            found.Add(("json_schema", () => Tessera.Constraints.Grammar.FromJsonSchema(raw, "json_schema")));
        }
        if (found.Count > 1) throw new ApiException($"{string.Join(", ", found.Select(f => f.Param))}: give one constraint", found[1].Param);
        if (found.Count == 0) return null;
        try { return found[0].Make(); }
        catch (FormatException e) { throw new ApiException(e.Message, found[0].Param); }
    }

    private static Tessera.Speculation.DraftTreeShape ParseTree(string name)
    {
        try { return Tessera.Speculation.SpeculationOptions.ParseTree(name); }
        catch (ArgumentException) { throw new ApiException($"tree '{name}': unknown shape (known: static, dynamic)", "tree"); }
    }

    /// <summary>OpenAI's <c>logit_bias</c>: an object from token ids (as strings) to a bias in [-100, 100]; llama.cpp's
    /// <c>false</c> bans the token. The ids are checked against the vocabulary by the handler.</summary>
    private static Dictionary<int, float>? ParseLogitBias(JsonElement root)
    {
        if (!root.TryGetProperty("logit_bias", out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Object) throw WrongType("logit_bias", "an object mapping token ids to numbers");
        var bias = new Dictionary<int, float>();
        foreach (var p in e.EnumerateObject())
        {
            if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int token))
                throw new ApiException($"logit_bias: key '{p.Name}' is not a token id", "logit_bias");
            bias[token] = p.Value.ValueKind switch
            {
                JsonValueKind.False => float.NegativeInfinity,
                JsonValueKind.Number when p.Value.TryGetDouble(out double d) && d is >= -100 and <= 100 => (float)d,
                JsonValueKind.Number => throw new ApiException($"logit_bias[{p.Name}] {p.Value}: must be in [-100, 100]", "logit_bias"),
                _ => throw new ApiException($"logit_bias[{p.Name}]: must be a number in [-100, 100] (or false to ban the token)", "logit_bias"),
            };
        }
        return bias.Count == 0 ? null : bias;
    }

    private static string? ParseSpeculate(JsonElement root)
    {
        string? name = String(root, "speculate")?.ToLowerInvariant();
        if (name is null or "none") return name;
        try { Tessera.Speculation.SpeculationOptions.ParseMethod(name); }
        catch (ArgumentException) { throw new ApiException($"speculate '{name}': unknown method (known: lookup, recycle, self, draft, none)", "speculate"); }
        return name;
    }

    private static string ParsePrompt(JsonElement e)
    {
        // A string, or an array holding one string (what clients send for a batch of one). Token arrays are not taken.
        if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 1 && e[0].ValueKind == JsonValueKind.String) e = e[0];
        if (e.ValueKind != JsonValueKind.String) throw new ApiException("prompt: must be a string (or an array of one string)", "prompt");
        string p = e.GetString()!;
        if (p.Length == 0) throw new ApiException("prompt: is empty", "prompt");
        return p;
    }

    private static List<ChatMessage> ParseMessages(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Array) throw new ApiException("messages: must be an array", "messages");
        if (e.GetArrayLength() == 0) throw new ApiException("messages: is empty", "messages");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var m in e.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw new ApiException($"{at}: must be an object", at);
            string role = String(m, "role", $"{at}.role") ?? throw new ApiException($"{at}.role: is required", $"{at}.role");
            if (role is not ("system" or "developer" or "user" or "assistant" or "tool"))
                throw new ApiException($"{at}.role '{role}': must be system, developer, user, assistant or tool", $"{at}.role");
            if (role == "tool")
            {
                if (String(m, "tool_call_id", $"{at}.tool_call_id") is null) throw new ApiException($"{at}.tool_call_id: is required for a tool message", $"{at}.tool_call_id");
                list.Add(new ChatMessage("user", Tessera.Chat.ToolCallFormat.RenderResult(Content(m, at))));
                continue;
            }
            string content = Content(m, at);
            if (role == "assistant" && m.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                var sb = new System.Text.StringBuilder(content);
                int k = 0;
                foreach (var call in calls.EnumerateArray())
                {
                    string cat = $"{at}.tool_calls[{k++}]";
                    if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function", out var fn) || fn.ValueKind != JsonValueKind.Object)
                        throw new ApiException($"{cat}.function: is required", $"{cat}.function");
                    string name = String(fn, "name", $"{cat}.function.name") ?? throw new ApiException($"{cat}.function.name: is required", $"{cat}.function.name");
                    string args = String(fn, "arguments", $"{cat}.function.arguments") ?? "{}";
                    try { using var _ = JsonDocument.Parse(args); }
                    catch (JsonException) { throw new ApiException($"{cat}.function.arguments: not valid JSON", $"{cat}.function.arguments"); }
                    sb.Append(Tessera.Chat.ToolCallFormat.RenderCall(name, args));
                }
                content = sb.ToString();
            }
            list.Add(new ChatMessage(role == "developer" ? "system" : role, content));
        }
        return list;
    }

    private static string Content(JsonElement m, string at)
    {
        if (!m.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null) return "";
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw new ApiException($"{at}.content: must be a string or an array of text parts", $"{at}.content");
        var sb = new System.Text.StringBuilder();
        foreach (var part in c.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || String(part, "type", $"{at}.content") != "text"
                || !part.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                throw new ApiException($"{at}.content: only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported", $"{at}.content");
            sb.Append(t.GetString());
        }
        return sb.ToString();
    }

    private static List<string> ParseStop(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var e) || e.ValueKind == JsonValueKind.Null) return [];
        var stops = new List<string>();
        if (e.ValueKind == JsonValueKind.String) stops.Add(e.GetString()!);
        else if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var s in e.EnumerateArray())
            {
                if (s.ValueKind != JsonValueKind.String) throw new ApiException("stop: must be a string or an array of strings", "stop");
                stops.Add(s.GetString()!);
            }
        }
        else throw new ApiException("stop: must be a string or an array of strings", "stop");
        if (stops.Count > 4) throw new ApiException($"stop: at most 4 sequences, got {stops.Count}", "stop");
        if (stops.Any(s => s.Length == 0)) throw new ApiException("stop: a stop sequence may not be empty", "stop");
        return stops;
    }

    private static bool Has(JsonElement o, string name) => o.TryGetProperty(name, out _);

    private static JsonElement Required(JsonElement o, string name) =>
        o.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null ? e : throw new ApiException($"{name}: is required", name);

    // Each reader: absent or null gives null; any other JSON type than the one expected is an error naming the field.
    private static string? String(JsonElement o, string name, string? param = null)
    {
        if (!o.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind == JsonValueKind.String ? e.GetString() : throw WrongType(param ?? name, "a string");
    }

    private static bool? Bool(JsonElement o, string name, string? param = null)
    {
        if (!o.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw WrongType(param ?? name, "true or false") };
    }

    private static float? Number(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double d) ? (float)d : throw WrongType(name, "a number");
    }

    private static int? Int(JsonElement o, string name) =>
        Long(o, name) is { } v ? v is >= int.MinValue and <= int.MaxValue ? (int)v : throw new ApiException($"{name} {v}: out of range", name) : null;

    private static long? Long(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) ? v : throw WrongType(name, "an integer");
    }

    private static Tessera.Generation.CautiousOptions? ParseCautious(JsonElement root)
    {
        int? trials = Int(root, "cautious_trials");
        if (Bool(root, "cautious") != true)
            return trials is null ? null : throw new ApiException("cautious_trials needs cautious: true", "cautious_trials");
        if (trials is < 1 or > 16) throw new ApiException($"cautious_trials {trials}: must be 1 to 16", "cautious_trials");
        return trials is { } t ? new Tessera.Generation.CautiousOptions { MaxTrials = t } : new Tessera.Generation.CautiousOptions();
    }

    private static Tessera.Pruning.PrefillPruningOptions? ParsePruning(JsonElement root)
    {
        string? method = String(root, "prefill_pruning");
        double? keep = root.TryGetProperty("keep", out var k) ? k.ValueKind == JsonValueKind.Number ? k.GetDouble() : throw WrongType("keep", "a number") : null;
        if (method is null) return keep is null ? null : throw new ApiException("keep needs prefill_pruning", "keep");
        try
        {
            var o = new Tessera.Pruning.PrefillPruningOptions { Method = Tessera.Pruning.PrefillPruningOptions.ParseMethod(method), Keep = keep ?? 0.5 };
            o.Validate();
            return o;
        }
        catch (ArgumentException e) { throw new ApiException(e.Message, keep is not null && e.Message.StartsWith("--keep") ? "keep" : "prefill_pruning"); }
    }

    /// <summary>The request's KV budget over the server's <paramref name="server"/> default (null: none).</summary>
    public Tessera.Kv.KvBudgetOptions? KvBudget(Tessera.Kv.KvBudgetOptions? server)
    {
        var (budget, policy, sinks) = Kv;
        if (budget == 0) return null;
        if (budget is null && server is null)
            return policy is null && sinks is null ? null : throw new ApiException($"{(policy is not null ? "kv_policy" : "kv_sinks")} needs kv_budget", policy is not null ? "kv_policy" : "kv_sinks");
        try
        {
            var o = (server ?? new Tessera.Kv.KvBudgetOptions { Budget = budget!.Value }) with
            {
                Budget = budget ?? server!.Budget,
                Policy = policy is null ? server?.Policy ?? Tessera.Kv.KvPolicy.H2O : Tessera.Kv.KvBudgetOptions.ParsePolicy(policy),
                Sinks = sinks ?? server?.Sinks ?? 4,
            };
            o.Validate();
            return o;
        }
        catch (ArgumentException e)
        {
            throw new ApiException(e.Message.Replace("--kv-budget", "kv_budget").Replace("--kv-sinks", "kv_sinks").Replace("--kv-policy", "kv_policy"),
                e.Message.StartsWith("--kv-policy") ? "kv_policy" : e.Message.StartsWith("--kv-sinks") ? "kv_sinks" : "kv_budget");
        }
    }

    private static ApiException WrongType(string name, string expected) => new($"{name}: must be {expected}", name);

    /// <summary>The engine's options for this request; <paramref name="defaultMaxTokens"/> when none was given.</summary>
    public GenerationOptions ToOptions(int defaultMaxTokens) => new()
    {
        MaxTokens = MaxTokens ?? defaultMaxTokens,
        Sampling = Sampling,
        StopStrings = Stop,
        StopAtEndOfGeneration = !IgnoreEos,
        RenderSpecial = Special,
        TokenHealing = TokenHealing,
        Cautious = Cautious,
        Suffix = Suffix,
        PromptLogProbs = Echo && LogProbs is not null,
        LogProbs = LogProbs,
        Choices = Choices,
        Constraint = Constraint,
    };
}
