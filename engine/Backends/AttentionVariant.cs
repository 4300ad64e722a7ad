namespace Tessera.Backends;

/// <summary>
/// How one layer's attention departs from plain causal softmax(q·kᵀ / √d): the score scale, Gemma 2's soft cap on the
/// scores and a sliding window. <c>default</c> is plain attention. Every backend's attention op applies it in this
/// order: s = q·k · scale; s = cap · tanh(s / cap) when capped; keys outside the window get probability 0.
/// </summary>
/// <param name="Scale">Factor on q·k; 0 means 1/√head_dim.</param>
/// <param name="SoftCap">Soft cap of the scores (Gemma 2: 50); 0 for none.</param>
/// <param name="Window">Sliding window: a query at position P sees the keys at P − Window + 1 .. P (llama.cpp's standard
/// window: masked when P − p ≥ Window); 0 for none. Positions are counted along the row's chain
/// (<see cref="RaggedBatch.WindowPosition"/>), so a draft-tree row gets the window plain decoding along its path gets.</param>
public readonly record struct AttentionVariant(float Scale = 0f, float SoftCap = 0f, int Window = 0)
{
    /// <summary>The factor on q·k for heads of <paramref name="headDim"/>.</summary>
    public float ScaleFor(int headDim) => Scale > 0 ? Scale : 1.0f / MathF.Sqrt(headDim);

    /// <summary>The first cache position a row at window position <paramref name="position"/> sees: 0 without a window.</summary>
    public int WindowStart(int position) => Window > 0 ? Math.Max(0, position - Window + 1) : 0;
}
