namespace Tessera.Model;

/// <summary>How RoPE pairs the dimensions of a head.</summary>
public enum RopeLayout
{
    /// <summary>Adjacent pairs (2i, 2i+1): llama.cpp's "normal" mode. GGUF files from llama.cpp's converter permute
    /// the Q/K rows so that this layout computes the same function as the original model.</summary>
    AdjacentPairs,

    /// <summary>Rotate-half pairs (i, i + d/2): the Hugging Face (GPT-NeoX) layout, used on unpermuted Q/K weights.</summary>
    RotateHalf,
}
