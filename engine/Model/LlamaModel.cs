using Tessera.Backends;

namespace Tessera.Model;

/// <summary>
/// The Llama forward pass, written once against <see cref="IBackend"/> ops. Reads like the paper: embed, then per
/// block RMSNorm → QKV → RoPE → causal GQA attention → output projection → residual, RMSNorm → SwiGLU → residual;
/// final norm and logits.
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private readonly BackendWeight _embedding, _output;
    private readonly BackendVector _outputNorm;
    private readonly PreparedLayer[] _layers;

    private sealed record PreparedLayer(
        BackendVector AttnNorm, BackendWeight Wq, BackendWeight Wk, BackendWeight Wv, BackendWeight Wo,
        BackendVector FfnNorm, BackendWeight Gate, BackendWeight Up, BackendWeight Down);

    /// <summary>Prepares <paramref name="weights"/> for <paramref name="backend"/> (on a GPU: uploads them).</summary>
    public LlamaModel(LlamaConfig config, LlamaWeights weights, IBackend backend)
    {
        Config = config;
        Backend = backend;
        _embedding = backend.Prepare(weights.TokenEmbedding);
        _output = ReferenceEquals(weights.Output, weights.TokenEmbedding) ? _embedding : backend.Prepare(weights.Output);
        _outputNorm = backend.Prepare(weights.OutputNorm);
        _layers = weights.Layers.Select(l => new PreparedLayer(
            backend.Prepare(l.AttnNorm), backend.Prepare(l.Wq), backend.Prepare(l.Wk), backend.Prepare(l.Wv),
            backend.Prepare(l.Wo), backend.Prepare(l.FfnNorm), backend.Prepare(l.Gate), backend.Prepare(l.Up),
            backend.Prepare(l.Down))).ToArray();
    }

    /// <summary>Hyper-parameters.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The backend the ops run on.</summary>
    public IBackend Backend { get; }

    /// <summary>A fresh run state: activation buffers for up to <paramref name="maxBatch"/> tokens per call and a
    /// KV cache of <paramref name="contextSize"/> positions.</summary>
    public RunState CreateState(int contextSize, int maxBatch = 256) => new(Config, Backend, contextSize, maxBatch);

    /// <summary>A state for ragged batched steps of up to <paramref name="maxRows"/> tokens from up to
    /// <paramref name="maxSequences"/> sequences over a paged cache of <paramref name="kvBlocks"/> blocks.</summary>
    public BatchState CreateBatchState(int maxRows, int maxSequences, int kvBlocks, int blockSize) =>
        new(Config, Backend, maxRows, maxSequences, kvBlocks, blockSize);

    /// <summary>
    /// One ragged step: the rows of every sequence of <paramref name="batch"/> run as one batch through the matrix
    /// products (weights read once for all), attention runs per sequence through its block table. Afterwards
    /// <see cref="BatchState.SequenceLogits"/> holds each sequence's last-row logits. Every op works row by row, so a
    /// sequence gets the same numbers, bit for bit, alone or beside others, and the same as <see cref="Forward(RunState, ReadOnlySpan{int}, Span{float})"/>.
    /// With <paramref name="readLogits"/> false the logits stay in the device buffer (sampling there, or a later
    /// <see cref="ReadLogits"/>).
    /// </summary>
    public void Forward(BatchState s, RaggedBatch batch, bool readLogits = true)
    {
        var c = Config;
        var a = s.Buffers;
        var b = Backend;
        int n = batch.Rows;
        if (n == 0) throw new ArgumentException("the batch is empty", nameof(batch));
        if (n > s.MaxRows) throw new ArgumentException($"the batch has {n} rows; the state holds {s.MaxRows}", nameof(batch));
        if (batch.Sequences > s.MaxSequences) throw new ArgumentException($"the batch has {batch.Sequences} sequences; the state holds {s.MaxSequences}", nameof(batch));

        b.Embed(_embedding, batch.Tokens.AsSpan(0, n), a.X);               // x (n, dim)
        for (int l = 0; l < _layers.Length; l++)
        {
            var w = _layers[l];
            // attention
            b.RmsNorm(a.X, w.AttnNorm, a.Xb, n, c.NormEps);                // xb (n, dim)
            b.MatMulShared(a.Xb, n, w.Wq, a.Q, w.Wk, a.K, w.Wv, a.V);      // q (n, q_dim), k and v (n, kv_dim)
            b.Rope(a.Q, batch, c.Heads, c.HeadDim, c.RopeTheta, c.RopeLayout);
            b.Rope(a.K, batch, c.KvHeads, c.HeadDim, c.RopeTheta, c.RopeLayout);
            b.StoreKv(s.Cache, l, a.K, a.V, batch);
            b.Attention(a.Q, s.Cache, l, batch, a.Att);                    // att (n, q_dim), per sequence
            OutputAndFeedForward(w, a, n);
        }

        b.RmsNorm(a.X, _outputNorm, a.Xb, n, c.NormEps);                   // xb (n, dim)
        // Only each sequence's last row continues it: gather those rows and project them together.
        int seqs = batch.Sequences;
        for (int q = 0; q < seqs; q++)
            b.Copy(a.Xb, (batch.RowStart[q] + batch.RowCount[q] - 1) * c.Dim, s.Last, q * c.Dim, c.Dim); // last (seqs, dim)
        b.MatMul(_output, s.Last, s.LogitsBuffer, seqs);                   // logits (seqs, vocab)
        if (readLogits) ReadLogits(s, seqs);
    }

    /// <summary>Copies the logits of the first <paramref name="sequences"/> sequences of the last ragged step into
    /// <see cref="BatchState.Logits"/> (what <see cref="Forward(BatchState, RaggedBatch, bool)"/> does unless told not to).</summary>
    public void ReadLogits(BatchState s, int sequences)
    {
        ArgumentNullException.ThrowIfNull(s);
        Backend.Read(s.LogitsBuffer, 0, s.Logits.AsSpan(0, sequences * Config.VocabSize));
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> at positions <c>state.Position ..</c>, appending their keys and values to the
    /// cache. Afterwards <c>state.Logits</c> holds the logits of the last token; when <paramref name="allLogits"/> is
    /// given (tokens.Length x vocab) it receives the logits of every token, in order (perplexity, golden tests).
    /// </summary>
    public void Forward(RunState s, ReadOnlySpan<int> tokens, Span<float> allLogits = default)
    {
        if (!allLogits.IsEmpty && allLogits.Length != tokens.Length * Config.VocabSize)
            throw new ArgumentException($"allLogits must hold {tokens.Length} x {Config.VocabSize} floats", nameof(allLogits));
        if (tokens.Length == 0) throw new ArgumentException("no tokens to run", nameof(tokens));
        if (s.Position + tokens.Length > s.ContextSize)
            throw new InvalidOperationException($"context is full: {s.Position} + {tokens.Length} tokens exceed the context of {s.ContextSize}");
        for (int start = 0; start < tokens.Length; start += s.MaxBatch)
        {
            int n = Math.Min(s.MaxBatch, tokens.Length - start);
            ForwardChunk(s, tokens.Slice(start, n),
                allLogits.IsEmpty ? default : allLogits.Slice(start * Config.VocabSize, n * Config.VocabSize));
        }
    }

    private void ForwardChunk(RunState s, ReadOnlySpan<int> tokens, Span<float> allLogits)
    {
        var c = Config;
        var a = s.Buffers;
        var b = Backend;
        int n = tokens.Length, pos = s.Position;

        b.Embed(_embedding, tokens, a.X);                                  // x (n, dim)
        for (int l = 0; l < _layers.Length; l++)
        {
            var w = _layers[l];
            // attention
            b.RmsNorm(a.X, w.AttnNorm, a.Xb, n, c.NormEps);                // xb (n, dim)
            // q (n, heads * head_dim), k and v (n, kv_heads * head_dim): one product over the three weights
            b.MatMulShared(a.Xb, n, w.Wq, a.Q, w.Wk, a.K, w.Wv, a.V);
            b.Rope(a.Q, n, c.Heads, c.HeadDim, pos, c.RopeTheta, c.RopeLayout);
            b.Rope(a.K, n, c.KvHeads, c.HeadDim, pos, c.RopeTheta, c.RopeLayout);
            b.StoreKv(s.Cache, l, a.K, a.V, n, pos);
            b.Attention(a.Q, s.Cache, l, n, pos, a.Att);                   // att (n, heads * head_dim)
            OutputAndFeedForward(w, a, n);
        }
        s.Position += n;

        b.RmsNorm(a.X, _outputNorm, a.Xb, n, c.NormEps);                   // xb (n, dim)
        if (!allLogits.IsEmpty)
        {
            var all = s.AllLogitsBuffer();
            b.MatMul(_output, a.Xb, all, n);                               // logits (n, vocab)
            b.Read(all, 0, allLogits);
            allLogits.Slice((n - 1) * c.VocabSize, c.VocabSize).CopyTo(s.Logits);
        }
        else
        {
            // Only the last token's logits are needed to continue: project one row.
            b.Copy(a.Xb, (n - 1) * c.Dim, s.Last, 0, c.Dim);               // last (1, dim)
            b.MatMul(_output, s.Last, s.LogitsBuffer, 1);                  // logits (1, vocab)
            // Read also ends a CUDA graph step; with nothing to copy, only the sampled token id will cross.
            b.Read(s.LogitsBuffer, 0, s.LogitsStayOnDevice ? Span<float>.Empty : s.Logits);
        }
    }

    /// <summary>The rest of a block once attention is done, the same for both forward passes: output projection and
    /// residual, then RMSNorm → SwiGLU → residual. x (n, dim) is the residual stream; xb, att, hb, hb2 are scratch.</summary>
    private void OutputAndFeedForward(PreparedLayer w, ForwardBuffers a, int n)
    {
        var c = Config;
        var b = Backend;
        b.MatMul(w.Wo, a.Att, a.Xb, n);                                    // xb (n, dim)
        b.Add(a.X, a.Xb, n * c.Dim);                                       // residual
        b.RmsNorm(a.X, w.FfnNorm, a.Xb, n, c.NormEps);
        b.MatMulShared(a.Xb, n, w.Gate, a.Hb, w.Up, a.Hb2);                // hb (n, ffn) gate, hb2 (n, ffn) up
        b.SwiGlu(a.Hb, a.Hb2, n * c.FfnDim);                               // hb = silu(hb) * hb2
        b.MatMul(w.Down, a.Hb, a.Xb, n);                                   // xb (n, dim)
        b.Add(a.X, a.Xb, n * c.Dim);                                       // residual
    }

    /// <summary>Nothing to free beyond what the backend owns.</summary>
    public void Dispose() { }
}
