using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization.Metadata;
using Tessera.Chat;
using Tessera.Constraints;
using Tessera.Generation;

namespace Tessera.Api;

/// <summary>Chat replies whole, tool calls and typed JSON: the library's side of structured output.</summary>
public sealed partial class InferenceEngine
{
    /// <summary>Generates the assistant's whole reply to <paramref name="messages"/>; with
    /// <see cref="GenerationOptions.Tools"/>, a reply that calls one comes back in <see cref="GenerationResult.ToolCall"/>.</summary>
    /// <exception cref="ArgumentException">An option is out of range or the tools are invalid (the message names it).</exception>
    /// <exception cref="NotSupportedException">The model's chat template is not one Tessera recognises.</exception>
    public async Task<GenerationResult> CompleteAsync(IReadOnlyList<ChatMessage> messages, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        if (options is { Choices: > 1 })
            throw new ArgumentException($"n {options.Choices}: CompleteAsync returns one choice; use CompleteChoicesAsync", nameof(options));
        return (await CompleteChoicesAsync(messages, options, cancellation).ConfigureAwait(false))[0];
    }

    /// <summary>Generates <see cref="GenerationOptions.Choices"/> whole replies to <paramref name="messages"/> (the
    /// prompt computed once), in choice order.</summary>
    public Task<IReadOnlyList<GenerationResult>> CompleteChoicesAsync(IReadOnlyList<ChatMessage> messages, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        var chunks = GenerateAsync(messages, options, cancellation);  // validates the tools (and compiles their grammar) first
        // The prompt that runs: with tools to call, the messages with the tools listed.
        var tools = options?.Tools;
        bool listed = tools is not null && tools.Functions.Count > 0 && (tools.Function is not null || tools.Choice != ToolChoice.None);
        int prompt = CountTokens(listed ? ToolCallFormat.WithTools(messages, tools!.Functions) : messages);
        return CollectAsync(chunks, options, prompt, tools: options?.Tools is not null);
    }

    /// <summary>
    /// The reply to <paramref name="messages"/> as a <typeparamref name="T"/>: the output is drawn under the JSON Schema
    /// of the type (see <see cref="SchemaOf"/>), so it always deserializes. Source-generated type information keeps
    /// it trimming- and NativeAOT-safe.
    /// </summary>
    /// <exception cref="InvalidOperationException">The reply ended before its JSON was complete (the token limit or the
    /// context); the message says which.</exception>
    /// <exception cref="ArgumentException">The type's schema uses what Tessera cannot constrain (named, with the schema).</exception>
    public async Task<T> CompleteJsonAsync<T>(IReadOnlyList<ChatMessage> messages, JsonTypeInfo<T> type, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        var result = await CompleteAsync(messages, Typed(type, options), cancellation).ConfigureAwait(false);
        return Deserialize(result, type);
    }

    /// <summary>The continuation of <paramref name="prompt"/> as a <typeparamref name="T"/> (see the chat overload).</summary>
    public async Task<T> CompleteJsonAsync<T>(string prompt, JsonTypeInfo<T> type, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        var result = await CompleteAsync(prompt, Typed(type, options), cancellation).ConfigureAwait(false);
        return Deserialize(result, type);
    }

    /// <summary>The reply as a <typeparamref name="T"/>, its contract read by reflection from
    /// <paramref name="json"/> (default: <see cref="JsonSerializerOptions.Default"/>, property names as declared).</summary>
    [RequiresUnreferencedCode("reads T's JSON contract by reflection; use the JsonTypeInfo<T> overload when trimming")]
    [RequiresDynamicCode("reads T's JSON contract by reflection; use the JsonTypeInfo<T> overload under NativeAOT")]
    public Task<T> CompleteJsonAsync<T>(IReadOnlyList<ChatMessage> messages, GenerationOptions? options = null, JsonSerializerOptions? json = null, CancellationToken cancellation = default) =>
        CompleteJsonAsync(messages, (JsonTypeInfo<T>)(json ?? JsonSerializerOptions.Default).GetTypeInfo(typeof(T)), options, cancellation);

    /// <summary>
    /// The JSON Schema Tessera constrains a <typeparamref name="T"/> reply with: the serializer's contract of the type
    /// (System.Text.Json's exporter) made strict as OpenAI's structured outputs are (every property required, no other
    /// property; a nullable one may be null), with <c>[StringLength]</c>, <c>[MaxLength]</c>, <c>[MinLength]</c>,
    /// <c>[Range]</c> and <c>[Description]</c> attributes carried over.
    /// </summary>
    public static string SchemaOf<T>(JsonTypeInfo<T> type) => TypedSchema.Of(type);

    private static GenerationOptions Typed(JsonTypeInfo type, GenerationOptions? options)
    {
        options ??= new GenerationOptions();
        if (options.Constraint is not null || options.Tools is not null)
            throw new ArgumentException("CompleteJsonAsync: the type is the constraint; give no other constraint or tools", nameof(options));
        string schema = TypedSchema.Of(type);
        string source = $"the schema of {type.Type.Name}";
        try { return options with { Constraint = Gbnf.Parse(JsonSchemaGrammar.ToGbnf(schema, source), source) }; }
        catch (FormatException e) { throw new ArgumentException($"{e.Message} (schema: {schema})", nameof(type), e); }
    }

    private static T Deserialize<T>(GenerationResult result, JsonTypeInfo<T> type)
    {
        if (result.FinishReason is FinishReason.MaxTokens or FinishReason.ContextFull)
            throw new InvalidOperationException($"the {type.Type.Name} reply ended at {(result.FinishReason == FinishReason.MaxTokens ? "the token limit" : "the end of the context")} " +
                $"after {result.TokenIds.Count} tokens, before its JSON was complete: allow more tokens (MaxTokens)");
        return JsonSerializer.Deserialize(result.Text, type)
            ?? throw new InvalidOperationException($"the {type.Type.Name} reply was null");
    }

    /// <summary><paramref name="messages"/> with the tools listed, and the options with their call grammar.</summary>
    private static (IReadOnlyList<ChatMessage>, GenerationOptions) WithTools(IReadOnlyList<ChatMessage> messages, GenerationOptions options)
    {
        var tools = options.Tools!;
        try
        {
            ToolCallFormat.Validate(tools.Functions);
            var choice = tools.Function is not null ? ToolChoice.Required : tools.Choice;
            if (choice == ToolChoice.None) return (messages, options);
            if (options.Constraint is not null)
                throw new ArgumentException("tools together with a constraint: give one (a call's arguments follow its function's schema)", nameof(options));
            return (ToolCallFormat.WithTools(messages, tools.Functions), options with { Constraint = ToolCallFormat.Grammar(tools.Functions, choice, tools.Function) });
        }
        catch (FormatException e) { throw new ArgumentException(e.Message, nameof(GenerationOptions.Tools), e); }
    }
}
