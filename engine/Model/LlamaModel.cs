using Tessera.Backends;
using Tessera.Kv;
using Tessera.Pruning;

namespace Tessera.Model;

/// <summary>
/// The Llama forward pass, written once against <see cref="IBackend"/> ops. Reads like the paper: embed, then per
/// block RMSNorm → QKV → RoPE → causal GQA attention → output projection → residual, RMSNorm → SwiGLU → residual;
/// final norm and logits. The other families' differences are flags of <see cref="LlamaConfig"/>, each applied at
/// one place below: Q/K/V biases and per-head Q/K norms (Qwen, Gemma 3), embeddings × √dim, norms after attention and
/// after the feed-forward, GeGLU and a final soft cap (Gemma), and per-layer attention variants (scale, soft cap,
/// sliding window) with a per-layer RoPE base.
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private readonly BackendWeight _embedding, _output;
    private readonly BackendVector _outputNorm;
    private readonly PreparedLayer[] _layers;
    private readonly int[] _cacheLayer;   // the KV cache layer of each of _layers (its index in the full model)
    // RoPE of each layer of the full model, for a context within the model's original one and past it (the same
    // unless the model has LongRoPE factors).
    private readonly RopeFrequencies[] _rope, _ropeLong;

    private sealed record PreparedLayer(
        BackendVector AttnNorm, BackendWeight Wq, BackendWeight Wk, BackendWeight Wv, BackendWeight Wo,
        BackendVector FfnNorm, BackendWeight Gate, BackendWeight Up, BackendWeight Down,
        BackendVector? BiasQ, BackendVector? BiasK, BackendVector? BiasV, BackendVector? QNorm, BackendVector? KNorm,
        BackendVector? AttnPostNorm, BackendVector? FfnPostNorm);

    /// <summary>Prepares <paramref name="weights"/> for <paramref name="backend"/> (on a GPU: uploads them).</summary>
    public LlamaModel(LlamaConfig config, LlamaWeights weights, IBackend backend)
    {
        Config = config;
        Backend = backend;
        _embedding = backend.Prepare(weights.TokenEmbedding);
        _output = ReferenceEquals(weights.Output, weights.TokenEmbedding) ? _embedding : backend.Prepare(weights.Output);
        _outputNorm = backend.Prepare(weights.OutputNorm);
        BackendVector? Optional(float[]? v) => v is null ? null : backend.Prepare(v);
        _layers = weights.Layers.Select(l => new PreparedLayer(
            backend.Prepare(l.AttnNorm), backend.Prepare(l.Wq), backend.Prepare(l.Wk), backend.Prepare(l.Wv),
            backend.Prepare(l.Wo), backend.Prepare(l.FfnNorm), backend.Prepare(l.Gate), backend.Prepare(l.Up),
            backend.Prepare(l.Down), Optional(l.BiasQ), Optional(l.BiasK), Optional(l.BiasV), Optional(l.QNorm),
            Optional(l.KNorm), Optional(l.AttnPostNorm), Optional(l.FfnPostNorm))).ToArray();
        _cacheLayer = [.. Enumerable.Range(0, _layers.Length)];
        SkippedLayers = [];
        // llama.cpp's choice: rope_freqs when present, else the long or short LongRoPE factors, else none.
        var plain = weights.RopeFactors ?? weights.RopeFactorsShort;
        var extended = weights.RopeFactors ?? weights.RopeFactorsLong;
        var shortFactors = plain is null ? null : backend.Prepare(plain);
        var longFactors = extended is null ? null : ReferenceEquals(extended, plain) ? shortFactors : backend.Prepare(extended);
        RopeFrequencies Of(int l, BackendVector? f) => new(config.RopeThetaOf(l), config.RopeFreqScaleOf(l), f, config.RopeAttnFactor);
        _rope = [.. Enumerable.Range(0, config.Layers).Select(l => Of(l, shortFactors))];
        _ropeLong = [.. Enumerable.Range(0, config.Layers).Select(l => Of(l, longFactors))];
    }

    private LlamaModel(LlamaModel full, int[] keep)
    {
        Config = full.Config;
        Backend = full.Backend;
        _embedding = full._embedding;
        _output = full._output;
        _outputNorm = full._outputNorm;
        _layers = [.. keep.Select(l => full._layers[l])];
        _cacheLayer = keep;
        _rope = full._rope;
        _ropeLong = full._ropeLong;
        SkippedLayers = [.. Enumerable.Range(0, full._layers.Length).Except(keep)];
    }

    /// <summary>The same model with <paramref name="skipped"/> layers left out of the forward pass (their residual
    /// simply passes through), sharing every prepared weight: a cheaper drafter for self-speculative decoding. Its
    /// states are separate (the kept layers see other inputs, so their keys and values differ from the full model's).</summary>
    /// <exception cref="ArgumentException">A layer is out of range, or every layer would be skipped.</exception>
    public LlamaModel SkipLayers(IReadOnlyCollection<int> skipped)
    {
        ArgumentNullException.ThrowIfNull(skipped);
        foreach (int l in skipped)
            if ((uint)l >= (uint)_layers.Length) throw new ArgumentException($"layer {l}: the model has {_layers.Length}", nameof(skipped));
        int[] keep = [.. Enumerable.Range(0, _layers.Length).Where(l => !skipped.Contains(l))];
        if (keep.Length == 0) throw new ArgumentException("cannot skip every layer", nameof(skipped));
        if (SkippedLayers.Count > 0) throw new InvalidOperationException("skip layers of the full model");
        return new LlamaModel(this, keep);
    }

    /// <summary>Layers this model leaves out (<see cref="SkipLayers"/>); empty for the full model.</summary>
    public IReadOnlyList<int> SkippedLayers { get; }

    /// <summary>Hyper-parameters.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The backend the ops run on.</summary>
    public IBackend Backend { get; }

    /// <summary>A fresh run state for one sequence: activation buffers for up to <paramref name="maxBatch"/> tokens per
    /// call and a paged KV cache of <paramref name="contextSize"/> positions, its blocks in order.</summary>
    public RunState CreateState(int contextSize, int maxBatch = 256) => new(Config, Backend, contextSize, maxBatch);

    /// <summary>A state for ragged batched steps of up to <paramref name="maxRows"/> tokens from up to
    /// <paramref name="maxSequences"/> sequences over a paged cache of <paramref name="kvBlocks"/> blocks. A sequence's
    /// context is <paramref name="contextPerSequence"/> when given, else the cache's share of one sequence (llama.cpp's
    /// rule; it chooses a LongRoPE model's factors).</summary>
    public BatchState CreateBatchState(int maxRows, int maxSequences, int kvBlocks, int blockSize, int contextPerSequence = 0) =>
        new(Config, Backend, maxRows, maxSequences, kvBlocks, blockSize, contextPerSequence);

    /// <summary>
    /// One forward step, the only one: the rows of every sequence of <paramref name="batch"/> (chains and trees, see
    /// <see cref="RaggedBatch"/>) run as one batch through the matrix products (weights read once for all), attention
    /// runs per sequence through its block table and ancestor mask. Afterwards <see cref="BatchState.Logits"/> holds the
    /// logits of the rows the batch asked for (<see cref="RaggedBatch.LogitRow"/>), in row order. Every op works row by
    /// row, so a row gets the same numbers, bit for bit, alone or beside others. With <paramref name="readLogits"/>
    /// false the logits stay in the device buffer (sampling there, or a later <see cref="ReadLogits"/>).
    /// </summary>
    public void Forward(BatchState s, RaggedBatch batch, bool readLogits = true)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(batch);
        var c = Config;
        var a = s.Buffers;
        var b = Backend;
        int n = batch.Rows;
        if (n == 0) throw new ArgumentException("the batch is empty", nameof(batch));
        if (n > s.MaxRows) throw new ArgumentException($"the batch has {n} rows; the state holds {s.MaxRows}", nameof(batch));
        if (batch.Sequences > s.MaxSequences) throw new ArgumentException($"the batch has {batch.Sequences} sequences; the state holds {s.MaxSequences}", nameof(batch));
        s.GrowLogits(batch.LogitRows);
        s.LastBatch = batch;

        if (s.Pruning[0] is { Armed: true } pruning)
        {
            ForwardPruned(s, batch, pruning, readLogits);
            return;
        }
        var scores = s.Scores is { Any: true } requested ? requested : null;
        scores?.Begin(batch);
        bool holes = false;
        for (int i = 0; i < batch.Sequences; i++) holes |= s.Pruning[i] is { HasHoles: true };
        b.BeginStep(batch);
        Embed(batch.Tokens.AsSpan(0, n), a.X);                             // x (n, dim)
        for (int l = 0; l < _layers.Length; l++)
        {
            // A pruned prompt's rows that skipped this layer are hidden from attention.
            if (holes)
                for (int i = 0; i < batch.Sequences; i++)
                    (batch.HiddenStart[i], batch.HiddenEnd[i]) = s.Pruning[i] is { HasHoles: true } p ? p.Hole(_cacheLayer[l]) : (0, 0);
            Layer(s, l, batch, n, scores);
        }
        if (holes) for (int i = 0; i < batch.Sequences; i++) batch.HiddenStart[i] = batch.HiddenEnd[i] = 0;
        Logits(s, batch, n, readLogits);
    }

    // The embedding rows of the tokens (Gemma's scaled by √dim).
    private void Embed(ReadOnlySpan<int> tokens, Activation x)
    {
        Backend.Embed(_embedding, tokens, x);
        if (Config.EmbeddingScale != 1f) Backend.Scale(x, Config.EmbeddingScale, tokens.Length * Config.Dim);
    }

    // One block on the step's n rows: RMSNorm → QKV (+ biases, Qwen2; each head RMS-normalized, Qwen3, Gemma 3) →
    // RoPE (the layer's base) → store K/V → attention (the layer's variant; adding the positions' scores when asked) →
    // output projection and feed-forward.
    private void Layer(BatchState s, int l, RaggedBatch batch, int n, AttentionScores? scores)
    {
        var c = Config;
        var a = s.Buffers;
        var b = Backend;
        var w = _layers[l];
        b.RmsNorm(a.X, w.AttnNorm, a.Xb, n, c.NormEps);                    // xb (n, dim)
        b.MatMulShared(a.Xb, n, w.Wq, a.Q, w.Wk, a.K, w.Wv, a.V);          // q (n, q_dim), k and v (n, kv_dim)
        if (w.BiasQ is { } bq)
        {
            b.AddBias(a.Q, bq, n);
            b.AddBias(a.K, w.BiasK!, n);
            b.AddBias(a.V, w.BiasV!, n);
        }
        if (w.QNorm is { } qNorm)
        {
            b.RmsNorm(a.Q, qNorm, a.Q, n * c.Heads, c.NormEps);              // per head: (n · heads, head_dim)
            b.RmsNorm(a.K, w.KNorm!, a.K, n * c.KvHeads, c.NormEps);
        }
        int layer = _cacheLayer[l];                                        // its index in the full model
        var rope = s.LongRope ? _ropeLong[layer] : _rope[layer];            // the layer's base, scale, factors
        b.Rope(a.Q, batch, c.Heads, c.HeadDim, rope, c.RopeLayout);
        b.Rope(a.K, batch, c.KvHeads, c.HeadDim, rope, c.RopeLayout);
        b.StoreKv(s.Cache, layer, a.K, a.V, batch);
        var variant = c.AttentionOf(layer);
        if (scores == null) b.Attention(a.Q, s.Cache, layer, batch, a.Att, variant); // att (n, q_dim), per sequence
        else b.Attention(a.Q, s.Cache, layer, batch, a.Att, scores, variant);     // ... and the positions' scores
        OutputAndFeedForward(w, a, n);
    }

    /// <summary>
    /// A prompt step under prompt pruning (<see cref="PrefillPruning"/>): one chain of one sequence. At each pruning
    /// layer the rule ranks the rows still running (from the attention it asked for in earlier layers), the best
    /// ones (the last row always) move to the front of the activations, in prompt order, and the layers above run
    /// only them, as a chain at cache rows start .. start + kept - 1 with their own RoPE positions. The rows a layer
    /// lacks are recorded for later steps.
    /// </summary>
    private void ForwardPruned(BatchState s, RaggedBatch batch, PrefillPruning pr, bool readLogits)
    {
        var c = Config;
        var a = s.Buffers;
        var b = Backend;
        int n0 = batch.Rows, start = batch.StartPos[0];
        if (batch.Sequences != 1 || batch.IsTree[0] || batch.LogitRows != 1 || batch.LogitRow[n0 - 1] != 0)
            throw new InvalidOperationException("prompt pruning runs one prompt chain whose last row alone gets logits");
        pr.Armed = false;
        if (pr.HasHoles) throw new InvalidOperationException("a pruned prompt already ran on this sequence: start a new one (Rewind(0)) before pruning another");
        var pruner = pr.Options.CreatePruner(pr.Schedule, n0);
        var scores = s.Scores ??= new AttentionScores();
        scores.Kind = AttentionScoreKind.Probability;
        Span<int> holeStart = stackalloc int[Config.Layers];   // indexed by cache layer (a SkipLayers model has fewer)
        holeStart.Fill(batch.StartPos[0] + n0);
        for (int i = 0; i < n0; i++) { pr.Original[i] = i; pr.Positions[i] = batch.Positions[i]; pr.Tokens[i] = batch.Tokens[i]; }
        var current = batch;
        int n = n0, stage = 0;
        long work = 0;
        b.BeginStep(batch);
        Embed(batch.Tokens.AsSpan(0, n0), a.X);                           // x (n0, dim)
        for (int l = 0; l < _layers.Length; l++)
        {
            if (stage < pr.Schedule.Count && pr.Schedule[stage].Layer == l)
            {
                int keep = Math.Clamp((int)Math.Round(pr.Schedule[stage++].Keep * n0), 1, n);
                if (keep < n)
                {
                    for (int j = 0; j < n; j++) pr.Rank[j] = pruner.Score(pr.Original[j]);
                    pr.Rank[n - 1] = float.PositiveInfinity;   // the last token always goes on
                    Kv.TopK.Select(pr.Rank.AsSpan(0, n), keep, pr.Kept);
                    for (int j = 0; j < keep; j++)
                    {
                        int from = pr.Kept[j];
                        if (from != j) b.Copy(a.X, from * c.Dim, a.X, j * c.Dim, c.Dim);   // from ≥ j: a forward copy
                        pr.Original[j] = pr.Original[from];
                        pr.Tokens[j] = pr.Tokens[from];
                    }
                    n = keep;
                    current = pr.Batch;
                    current.Clear();
                    current.Add(pr.Tokens.AsSpan(0, n), start, batch.Table(0));
                    for (int j = 0; j < n; j++) current.Positions[j] = pr.Positions[pr.Original[j]];
                    b.BeginStep(current);
                }
            }
            holeStart[_cacheLayer[l]] = start + n;
            int from0 = pruner.ScoreFrom(l, n);
            if (from0 >= 0)
            {
                scores.Clear();
                scores.Request(0, from0);
                scores.Begin(current);
                Layer(s, l, current, n, scores);
                pruner.Observe(l, scores.Of(0).Slice(start, n), pr.Original.AsSpan(0, n));
            }
            else Layer(s, l, current, n, null);
            work += n;
        }
        scores.Clear();
        pr.PromptRows = n0;
        pr.KeptRows = n;
        pr.ComputedShare = work / (double)((long)n0 * _layers.Length);
        pr.SetHoles(start + n0, holeStart);
        Logits(s, current, n, readLogits);
    }

    // Final norm and the logits of the rows the batch asks for.
    private void Logits(BatchState s, RaggedBatch batch, int n, bool readLogits)
    {
        var c = Config;
        var a = s.Buffers;
        var b = Backend;
        b.RmsNorm(a.X, _outputNorm, a.Xb, n, c.NormEps);                   // xb (n, dim)
        int logitRows = batch.LogitRows;
        if (logitRows == n)
            b.MatMul(_output, a.Xb, s.LogitsBuffer, n);                    // every row: logits (n, vocab)
        else
        {
            // Only some rows continue a sequence (usually each sequence's last): gather them and project them together.
            for (int r = 0; r < n; r++)
                if (batch.LogitRow[r] >= 0) b.Copy(a.Xb, r * c.Dim, s.Last, batch.LogitRow[r] * c.Dim, c.Dim); // (logit rows, dim)
            b.MatMul(_output, s.Last, s.LogitsBuffer, logitRows);          // logits (logit rows, vocab)
        }
        if (c.FinalSoftCap > 0) b.SoftCap(s.LogitsBuffer, c.FinalSoftCap, logitRows * c.VocabSize); // Gemma 2
        if (readLogits) ReadLogits(s, logitRows);
    }

    /// <summary>Copies the first <paramref name="rows"/> logit rows of the last step into
    /// <see cref="BatchState.Logits"/> (what <see cref="Forward(BatchState, RaggedBatch, bool)"/> does unless told not to).</summary>
    public void ReadLogits(BatchState s, int rows)
    {
        ArgumentNullException.ThrowIfNull(s);
        Backend.Read(s.LogitsBuffer, 0, s.Logits.AsSpan(0, rows * Config.VocabSize));
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> at positions <c>state.Position ..</c> of one sequence, appending their keys and
    /// values to its cache: the step above with one chain. Afterwards <c>state.Logits</c> holds the logits of the last
    /// token; when <paramref name="allLogits"/> is given (tokens.Length x vocab) it receives the logits of every token,
    /// in order (perplexity, golden tests, verification of a draft).
    /// </summary>
    public void Forward(RunState s, ReadOnlySpan<int> tokens, Span<float> allLogits = default)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (!allLogits.IsEmpty && allLogits.Length != tokens.Length * Config.VocabSize)
            throw new ArgumentException($"allLogits must hold {tokens.Length} x {Config.VocabSize} floats", nameof(allLogits));
        if (tokens.Length == 0) throw new ArgumentException("no tokens to run", nameof(tokens));
        // Under a KV budget each chunk is checked (the cache shrinks after each); otherwise the whole run is.
        if (s.KvPolicy is null && s.Cached + tokens.Length > s.ContextSize)
            throw new InvalidOperationException($"context is full: {s.Cached} + {tokens.Length} tokens exceed the context of {s.ContextSize}");
        if (s.Batched.Pruning[0] is { Armed: true })
        {
            if (tokens.Length > s.MaxBatch)
                throw new InvalidOperationException($"prompt pruning runs the prompt as one step: its {tokens.Length} tokens exceed the state's {s.MaxBatch} rows per step");
            if (!allLogits.IsEmpty) throw new InvalidOperationException("prompt pruning gives logits for the prompt's last token only");
            if (tokens.Length < 2) s.Batched.Pruning[0]!.Armed = false;   // nothing to prune
        }
        for (int start = 0, n; start < tokens.Length; start += n)
        {
            n = Math.Min(s.MaxBatch, tokens.Length - start);
            // Under a KV budget a prompt's chunks end at multiples of KvBudget.PromptChunk positions, where it is
            // compressed (and at its end): the same points whatever the batch size, here and in the scheduler.
            if (s.KvPolicy is not null)
            {
                n = Math.Min(n, KvBudget.PromptChunk - s.Position % KvBudget.PromptChunk);
                if (s.Cached + n > s.ContextSize)
                    throw new InvalidOperationException($"context is full: {s.Cached} + {n} tokens exceed the context of {s.ContextSize} (a KV budget of {s.KvPolicy.Options.Budget} needs {s.KvPolicy.Options.Budget - 1 + KvBudget.PromptChunk})");
            }
            var batch = s.Batch;
            batch.Clear();
            batch.Add(tokens.Slice(start, n), s.Cached, s.Table, allLogits.IsEmpty ? RowLogits.Last : RowLogits.All, s.Position);
            s.RequestScores(n);
            Forward(s, batch, allLogits.IsEmpty ? default : allLogits.Slice(start * Config.VocabSize, n * Config.VocabSize));
            s.Cached += n;
            s.Position += n;
            s.ScoresRun(n, compress: start + n == tokens.Length || s.Position % KvBudget.PromptChunk == 0);
        }
    }

    /// <summary>
    /// Runs a draft tree on one sequence at <c>state.Position</c> (row 0, the root, is the next input token; see
    /// <see cref="RaggedBatch.AddTree"/>) and writes every row's logits to <paramref name="allLogits"/>
    /// (tokens.Length x vocab). The rows are cached at <c>Position ..</c>, but the position does not move: the caller
    /// keeps the accepted path with <see cref="RunState.Accept"/>. With <paramref name="logitsFrom"/> only the rows from
    /// it on get logits (a dynamic draft tree reads just the rows it expands next): <paramref name="allLogits"/> then
    /// holds (tokens.Length - logitsFrom) x vocab.
    /// </summary>
    public void ForwardTree(RunState s, ReadOnlySpan<int> tokens, ReadOnlySpan<int> parents, Span<float> allLogits, int logitsFrom = 0)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (allLogits.Length != (tokens.Length - logitsFrom) * Config.VocabSize)
            throw new ArgumentException($"allLogits must hold {tokens.Length - logitsFrom} x {Config.VocabSize} floats", nameof(allLogits));
        if (tokens.Length > s.MaxBatch) throw new ArgumentException($"the tree has {tokens.Length} rows; the state runs at most {s.MaxBatch} per step", nameof(tokens));
        if (s.Cached + tokens.Length > s.ContextSize)
            throw new InvalidOperationException($"context is full: {s.Cached} + {tokens.Length} tree rows exceed the context of {s.ContextSize}");
        if (s.KvPolicy != null) throw new InvalidOperationException("a draft tree cannot run on a sequence with a KV budget");
        var batch = s.Batch;
        batch.Clear();
        batch.AddTree(tokens, parents, s.Cached, s.Table, logitsFrom, s.Position);
        Forward(s, batch, allLogits);
    }

    // One chain or tree of a RunState: logits of the last row into state.Logits (left on the device while it samples
    // there), or of every row into allLogits.
    private void Forward(RunState s, RaggedBatch batch, Span<float> allLogits)
    {
        var state = s.Batched;
        Forward(state, batch, readLogits: false);
        int vocab = Config.VocabSize;
        if (!allLogits.IsEmpty)
        {
            Backend.Read(state.LogitsBuffer, 0, allLogits);
            allLogits.Slice(allLogits.Length - vocab, vocab).CopyTo(s.Logits);
        }
        else
            // Read also ends a CUDA graph step; with nothing to copy, only the sampled token id will cross.
            Backend.Read(state.LogitsBuffer, 0, s.LogitsStayOnDevice ? Span<float>.Empty : s.Logits);
    }

    /// <summary>The rest of a block once attention is done, the same for both forward passes: output projection
    /// (RMSNorm of it, Gemma) and residual, then RMSNorm → SwiGLU (GeGLU, Gemma) → (RMSNorm, Gemma) → residual.
    /// x (n, dim) is the residual stream; xb, att, hb, hb2 are scratch.</summary>
    private void OutputAndFeedForward(PreparedLayer w, ForwardBuffers a, int n)
    {
        var c = Config;
        var b = Backend;
        b.MatMul(w.Wo, a.Att, a.Xb, n);                                    // xb (n, dim)
        if (w.AttnPostNorm is { } attnPost) b.RmsNorm(a.Xb, attnPost, a.Xb, n, c.NormEps);
        b.Add(a.X, a.Xb, n * c.Dim);                                       // residual
        b.RmsNorm(a.X, w.FfnNorm, a.Xb, n, c.NormEps);
        b.MatMulShared(a.Xb, n, w.Gate, a.Hb, w.Up, a.Hb2);                // hb (n, ffn) gate, hb2 (n, ffn) up
        if (c.Activation == FfnActivation.GeluTanh) b.GeGlu(a.Hb, a.Hb2, n * c.FfnDim); // hb = gelu(hb) * hb2
        else b.SwiGlu(a.Hb, a.Hb2, n * c.FfnDim);                          // hb = silu(hb) * hb2
        b.MatMul(w.Down, a.Hb, a.Xb, n);                                   // xb (n, dim)
        if (w.FfnPostNorm is { } ffnPost) b.RmsNorm(a.Xb, ffnPost, a.Xb, n, c.NormEps);
        b.Add(a.X, a.Xb, n * c.Dim);                                       // residual
    }

    /// <summary>Nothing to free beyond what the backend owns.</summary>
    public void Dispose() { }
}
