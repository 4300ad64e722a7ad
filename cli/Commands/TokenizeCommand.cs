using System.CommandLine;
using System.Text.Json;
using Tessera.Tokenization;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera tokenize</c>: token ids and pieces of a text, from a model or a tokenizer file alone.</summary>
internal static class TokenizeCommand
{
    public static Command Create(CliIo io)
    {
        var model = new Option<string>("--model", "-m")
        {
            Description = "GGUF file (a vocab-only one works), Hugging Face folder, tokenizer.json or tokenizer.model",
            Required = true,
        };
        var text = new Option<string>("--text") { Description = "text to tokenize", Required = true };
        var bos = new Option<bool>("--bos") { Description = "add the BOS token first" };
        var special = new Option<bool>("--parse-special") { Description = "turn control-token text (e.g. <|start_story|>) into its id" };
        var json = new Option<bool>("--json") { Description = "print {\"tokens\": [...], \"pieces\": [...]}" };
        var cmd = new Command("tokenize", "show the tokens of a text") { model, text, bos, special, json };
        cmd.SetAction(r => io.Guard(() =>
        {
            string path = r.GetValue(model)!;
            var tok = Tokenizer.Load(path);
            var ids = tok.Encode(r.GetValue(text)!, r.GetValue(bos), r.GetValue(special));
            if (r.GetValue(json))
            {
                using var ms = new MemoryStream();
                using (var w = new Utf8JsonWriter(ms))
                {
                    w.WriteStartObject();
                    w.WriteStartArray("tokens");
                    foreach (int id in ids) w.WriteNumberValue(id);
                    w.WriteEndArray();
                    w.WriteStartArray("pieces");
                    foreach (int id in ids) w.WriteStringValue(tok.TokenText(id));
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                io.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
            }
            else
            {
                foreach (int id in ids) io.Out.WriteLine($"{id,8} -> '{tok.TokenText(id)}'");
            }
            return 0;
        }));
        return cmd;
    }
}
