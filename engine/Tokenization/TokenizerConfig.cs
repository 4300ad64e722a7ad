using System.Text.Json;
using Tessera.Formats;

namespace Tessera.Tokenization;

/// <summary>
/// The parts of a Hugging Face <c>tokenizer_config.json</c> a tokenizer needs: BOS/EOS/PAD token texts and the
/// add-BOS/EOS flags. Every value is null when the file or the key is absent.
/// </summary>
internal sealed record TokenizerConfig(string? BosToken, string? EosToken, string? PadToken, bool? AddBos, bool? AddEos, bool? CleanSpaces)
{
    public static readonly TokenizerConfig Empty = new(null, null, null, null, null, null);

    /// <summary>Reads <c>tokenizer_config.json</c> beside <paramref name="tokenizerFile"/>, if there is one.</summary>
    public static TokenizerConfig ReadBeside(string tokenizerFile)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(tokenizerFile));
        string path = Path.Combine(dir ?? ".", "tokenizer_config.json");
        if (!File.Exists(path)) return Empty;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
            var root = doc.RootElement;
            return new TokenizerConfig(TokenText(root, "bos_token"), TokenText(root, "eos_token"), TokenText(root, "pad_token"),
                Bool(root, "add_bos_token"), Bool(root, "add_eos_token"), Bool(root, "clean_up_tokenization_spaces"));
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            throw new ModelFormatException(path, $"cannot read the tokenizer config: {e.Message}", e);
        }
    }

    // A token is written as a string or as an object with "content".
    private static string? TokenText(JsonElement root, string key) =>
        root.TryGetProperty(key, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        } : null;

    private static bool? Bool(JsonElement root, string key) =>
        root.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
}
