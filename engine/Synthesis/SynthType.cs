using Tessera.Quantization;

namespace Tessera.Synthesis;

/// <summary>File types <c>tessera synth</c> writes, named as llama.cpp names them.</summary>
public enum SynthType
{
    /// <summary>All matrices F16.</summary>
    F16,
    /// <summary>All matrices F32 (small shapes: the reference without any rounding of the weights).</summary>
    F32,
    /// <summary>All matrices BF16.</summary>
    BF16,
    /// <summary>All matrices Q8_0.</summary>
    Q8_0,
    /// <summary>Q4_0, with the output matrix Q6_K as llama.cpp does.</summary>
    Q4_0,
    /// <summary>Q4_K, with Q6_K for the output and for attn_v / ffn_down in about half the layers.</summary>
    Q4_K_M,
}

/// <summary>Which tensor type each tensor gets, following llama.cpp's <c>llama_tensor_get_type</c> (src/llama-quant.cpp)
/// for a Llama model without an importance matrix.</summary>
public static class SynthTypes
{
    /// <summary>Parses a type name, case-insensitively (<c>q4_k_m</c>, <c>Q8_0</c>, <c>f16</c>...).</summary>
    public static SynthType Parse(string text) =>
        Enum.TryParse(text, ignoreCase: true, out SynthType t) && Enum.IsDefined(t) && !int.TryParse(text, out _) ? t
            : throw new ArgumentException($"--type {text}: unknown type (known: {string.Join(", ", Enum.GetNames<SynthType>()).ToLowerInvariant()})");

    /// <summary><c>general.file_type</c>: llama.cpp's <c>llama_ftype</c> value.</summary>
    public static uint FileType(SynthType t) => t switch
    {
        SynthType.F32 => 0,
        SynthType.F16 => 1,
        SynthType.Q4_0 => 2,
        SynthType.Q8_0 => 7,
        SynthType.Q4_K_M => 15,
        SynthType.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>llama.cpp's <c>use_more_bits</c>: the first and last eighth of the layers and every third one between.</summary>
    public static bool UseMoreBits(int layer, int layers) =>
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    /// <summary>The type of a 2-D weight. <paramref name="role"/> is the GGUF name without <c>blk.N.</c> and
    /// <c>.weight</c> (<c>attn_v</c>, <c>ffn_down</c>, <c>output</c>, <c>token_embd</c>...); <paramref name="layer"/> is
    /// its block (ignored for the others); <paramref name="rowLength"/> its innermost extent.</summary>
    public static GgmlType TensorType(SynthType t, string role, int layer, ModelShape shape, long rowLength)
    {
        GgmlType baseType = t switch
        {
            SynthType.F32 => GgmlType.F32,
            SynthType.F16 => GgmlType.F16,
            SynthType.BF16 => GgmlType.BF16,
            SynthType.Q8_0 => GgmlType.Q8_0,
            SynthType.Q4_0 => GgmlType.Q4_0,
            SynthType.Q4_K_M => GgmlType.Q4_K,
            _ => throw new ArgumentOutOfRangeException(nameof(t)),
        };
        // llama.cpp applies its per-tensor rules only when quantizing; F16/BF16 files keep every matrix as it is.
        if (t is SynthType.F32 or SynthType.F16 or SynthType.BF16) return baseType;

        GgmlType type = baseType;
        bool isOutput = role == "output" || (shape.Tied && role == "token_embd");
        if (isOutput)
        {
            // "if (nx % QK_K != 0) Q8_0 else if (new_type != Q8_0) Q6_K"
            type = rowLength % 256 != 0 ? GgmlType.Q8_0 : type == GgmlType.Q8_0 ? GgmlType.Q8_0 : GgmlType.Q6_K;
        }
        else if (t == SynthType.Q4_K_M && role is "attn_v" or "ffn_down" && UseMoreBits(layer, shape.Layers))
        {
            type = GgmlType.Q6_K;
        }
        // K-quants need rows of whole 256-element super-blocks; llama.cpp falls back per type.
        if (rowLength % 256 != 0)
            type = type switch { GgmlType.Q4_K => GgmlType.Q5_0, GgmlType.Q6_K => GgmlType.Q8_0, _ => type };
        return type;
    }
}
