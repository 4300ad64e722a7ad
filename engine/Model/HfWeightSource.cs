using Tessera.Formats;
using Tessera.Formats.HuggingFace;
using Tessera.Formats.SafeTensors;

namespace Tessera.Model;

/// <summary>
/// Weights of a Hugging Face folder (<c>config.json</c> + safetensors), asked for by llama.cpp's names and mapped to
/// transformers' names. Q/K stay unpermuted; the config says <see cref="RopeLayout.RotateHalf"/> instead.
/// </summary>
public sealed unsafe class HfWeightSource : IWeightSource
{
    private readonly SafeTensorsCheckpoint _checkpoint;

    private HfWeightSource(SafeTensorsCheckpoint checkpoint) => _checkpoint = checkpoint;

    /// <inheritdoc/>
    public string Path => _checkpoint.Path;

    /// <summary>Opens a model folder: its config, weights and (if any) chat template from tokenizer_config.json.</summary>
    public static (LlamaConfig Config, IWeightSource Source, string? ChatTemplate) Open(string dir)
    {
        var hf = HfConfig.Load(dir);
        var config = LlamaConfig.FromHf(hf, hf.Path);
        var checkpoint = SafeTensorsCheckpoint.Open(dir);
        return (config, new HfWeightSource(checkpoint), ReadChatTemplate(dir));
    }

    /// <summary>transformers' name for a llama.cpp tensor name.</summary>
    internal static string MapName(string gguf)
    {
        if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
        if (gguf == "output_norm.weight") return "model.norm.weight";
        if (gguf == "output.weight") return "lm_head.weight";
        if (!gguf.StartsWith("blk.", StringComparison.Ordinal)) return gguf;
        int dot = gguf.IndexOf('.', 4);
        string layer = gguf[4..dot], rest = gguf[(dot + 1)..];
        string mapped = rest switch
        {
            "attn_norm.weight" => "input_layernorm.weight",
            "attn_q.weight" => "self_attn.q_proj.weight",
            "attn_k.weight" => "self_attn.k_proj.weight",
            "attn_v.weight" => "self_attn.v_proj.weight",
            "attn_q.bias" => "self_attn.q_proj.bias",
            "attn_k.bias" => "self_attn.k_proj.bias",
            "attn_v.bias" => "self_attn.v_proj.bias",
            "attn_q_norm.weight" => "self_attn.q_norm.weight",
            "attn_k_norm.weight" => "self_attn.k_norm.weight",
            "attn_output.weight" => "self_attn.o_proj.weight",
            "ffn_norm.weight" => "post_attention_layernorm.weight",
            "ffn_gate.weight" => "mlp.gate_proj.weight",
            "ffn_up.weight" => "mlp.up_proj.weight",
            "ffn_down.weight" => "mlp.down_proj.weight",
            _ => rest,
        };
        return $"model.layers.{layer}.{mapped}";
    }

    /// <inheritdoc/>
    public WeightTensor? Find(string name, int rows, int cols)
    {
        string hfName = MapName(name);
        var t = _checkpoint.FindTensor(hfName);
        if (t == null) return null;
        bool matches = t.Shape.Count switch
        {
            1 => rows == 1 && t.Shape[0] == cols,
            2 => t.Shape[0] == rows && t.Shape[1] == cols,
            _ => false,
        };
        if (!matches)
            throw new ModelFormatException(t.FilePath, $"tensor '{hfName}' has shape {t.ShapeText}, but config.json implies [{rows}, {cols}]");
        return new WeightTensor(hfName, t.ComputeType, rows, cols, t.Data, t.ByteSize);
    }

    private static string? ReadChatTemplate(string dir)
    {
        string path = System.IO.Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.TryGetProperty("chat_template", out var t) && t.ValueKind == System.Text.Json.JsonValueKind.String
                ? t.GetString() : null;
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ModelFormatException(path, $"invalid JSON: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _checkpoint.Dispose();
}
