using Tessera.Backends;

namespace Tessera.Model;

/// <summary>
/// The activation buffers a forward pass works in, for up to <c>rows</c> rows (tokens) at once: allocated once by
/// <see cref="RunState"/> (one sequence) or <see cref="BatchState"/> (a ragged batch), so no step allocates.
/// </summary>
internal sealed class ForwardBuffers : IDisposable
{
    public ForwardBuffers(LlamaConfig c, IBackend backend, int rows)
    {
        X = backend.Allocate(rows * c.Dim);
        Xb = backend.Allocate(rows * Math.Max(c.Dim, c.QDim));
        Q = backend.Allocate(rows * c.QDim);
        K = backend.Allocate(rows * c.KvDim);
        V = backend.Allocate(rows * c.KvDim);
        Att = backend.Allocate(rows * c.QDim);
        Hb = backend.Allocate(rows * c.FfnDim);
        Hb2 = backend.Allocate(rows * c.FfnDim);
    }

    public Activation X { get; }        // (rows, dim) residual stream
    public Activation Xb { get; }       // (rows, max(dim, q_dim)) normed input / projection output
    public Activation Q { get; }        // (rows, heads * head_dim)
    public Activation K { get; }        // (rows, kv_heads * head_dim)
    public Activation V { get; }        // (rows, kv_heads * head_dim)
    public Activation Att { get; }      // (rows, heads * head_dim) attention output
    public Activation Hb { get; }       // (rows, ffn) gate, then silu(gate) * up
    public Activation Hb2 { get; }      // (rows, ffn) up

    public void Dispose()
    {
        foreach (var a in new[] { X, Xb, Q, K, V, Att, Hb, Hb2 }) a.Dispose();
    }
}
