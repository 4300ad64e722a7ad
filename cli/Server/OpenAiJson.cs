using System.Text;
using System.Text.Json;
using Tessera.Api;
using Tessera.Generation;

namespace Tessera.Cli.Server;

/// <summary>Writes OpenAI-shaped objects with <see cref="Utf8JsonWriter"/> (no reflection, NativeAOT-safe).</summary>
internal static class OpenAiJson
{
    public static string FinishReason(FinishReason r) =>
        r is Generation.FinishReason.EndOfGeneration or Generation.FinishReason.StopString ? "stop" : "length";

    public static void Error(Utf8JsonWriter w, string message, string type, string? param)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", message);
        w.WriteString("type", type);
        if (param is null) w.WriteNull("param"); else w.WriteString("param", param);
        w.WriteNull("code");
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>The fields every response and chunk starts with.</summary>
    public static void Head(Utf8JsonWriter w, string id, string @object, long created, string model)
    {
        w.WriteString("id", id);
        w.WriteString("object", @object);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
    }

    public static void Usage(Utf8JsonWriter w, int prompt, int completion)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", prompt);
        w.WriteNumber("completion_tokens", completion);
        w.WriteNumber("total_tokens", prompt + completion);
        w.WriteEndObject();
    }

    public static void Finish(Utf8JsonWriter w, FinishReason? r)
    {
        if (r is { } f) w.WriteString("finish_reason", FinishReason(f));
        else w.WriteNull("finish_reason");
    }

    /// <summary>Legacy completions shape: parallel arrays, offsets into the generated text.</summary>
    public static void CompletionLogProbs(Utf8JsonWriter w, InferenceEngine engine, IReadOnlyList<TokenLogProb>? lps, int textOffset,
        PromptScore? prompt = null)
    {
        if (lps is null) { w.WriteNull("logprobs"); return; }
        // With echo, the prompt's tokens come first; one with nothing before it (no BOS) has a null log-probability.
        int? head = prompt?.FirstToken;
        var all = prompt is null ? lps : [.. prompt.Rest, .. lps];
        w.WriteStartObject("logprobs");
        w.WriteStartArray("tokens");
        if (head is { } h) w.WriteStringValue(Piece(engine, h));
        foreach (var lp in all) w.WriteStringValue(Piece(engine, lp.Token));
        w.WriteEndArray();
        w.WriteStartArray("token_logprobs");
        if (head is not null) w.WriteNullValue();
        foreach (var lp in all) w.WriteNumberValue(lp.LogProb);
        w.WriteEndArray();
        w.WriteStartArray("top_logprobs");
        if (head is not null) w.WriteNullValue();
        foreach (var lp in all)
        {
            w.WriteStartObject();
            foreach (var alt in lp.Top) w.WriteNumber(Piece(engine, alt.Token), alt.LogProb);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("text_offset");
        if (prompt is not null)
        {
            // Offsets into the echoed text: the tokenizer's space prefix is in the first piece, not in the text.
            int start = textOffset, at = -prompt.Skip;
            if (head is { } first)
            {
                w.WriteNumberValue(start + Math.Max(0, at));
                at += Piece(engine, first).Length;
            }
            foreach (var lp in prompt.Rest)
            {
                w.WriteNumberValue(start + Math.Max(0, at));
                at += Piece(engine, lp.Token).Length;
            }
            textOffset = start + prompt.TextLength;  // the generated text follows the prompt exactly
        }
        foreach (var lp in lps)
        {
            w.WriteNumberValue(textOffset);
            textOffset += Piece(engine, lp.Token).Length;
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>An echoed prompt's log-probabilities: its first token when nothing precedes it (no BOS; reported with
    /// a null log-probability, as OpenAI does), then each later token's.</summary>
    /// <param name="FirstToken">The prompt's first token when nothing precedes it; else null.</param>
    /// <param name="Rest">Each later prompt token's log-probability.</param>
    /// <param name="TextLength">Characters of the echoed prompt.</param>
    /// <param name="Skip">Characters the tokenizer put before the text (a space prefix), in the first piece.</param>
    public sealed record PromptScore(int? FirstToken, IReadOnlyList<TokenLogProb> Rest, int TextLength, int Skip);

    /// <summary>Chat shape: one entry per token with its bytes and the alternatives.</summary>
    public static void ChatLogProbs(Utf8JsonWriter w, InferenceEngine engine, IReadOnlyList<TokenLogProb>? lps)
    {
        if (lps is null) { w.WriteNull("logprobs"); return; }
        w.WriteStartObject("logprobs");
        w.WriteStartArray("content");
        foreach (var lp in lps)
        {
            w.WriteStartObject();
            ChatToken(w, engine, lp.Token, lp.LogProb);
            w.WriteStartArray("top_logprobs");
            foreach (var alt in lp.Top)
            {
                w.WriteStartObject();
                ChatToken(w, engine, alt.Token, alt.LogProb);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void ChatToken(Utf8JsonWriter w, InferenceEngine engine, int token, float logProb)
    {
        byte[] bytes = engine.TokenBytes(token);
        w.WriteString("token", Encoding.UTF8.GetString(bytes));
        w.WriteNumber("logprob", logProb);
        w.WriteStartArray("bytes");
        foreach (byte b in bytes) w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    // A token's text; a piece that ends mid-character shows U+FFFD, as OpenAI's own token strings do.
    internal static string Piece(InferenceEngine engine, int token) => Encoding.UTF8.GetString(engine.TokenBytes(token));
}
