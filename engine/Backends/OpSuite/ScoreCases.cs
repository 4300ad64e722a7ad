using Tessera.Model;

namespace Tessera.Backends.OpSuite;

public static partial class OpCases
{
    // What attention reports for KV budgets and prompt pruning (AttentionScores): per scored sequence, the sum over
    // its scored rows and every query head of what each cached position receives. The definition in double: the
    // logits of the F16 keys with q rounded to F16 (as attention), the masks of attention (causal, tree ancestors,
    // hidden positions), then softmax(x) or Keyformer's softmax((x + g) / τ). Float arithmetic in another order (and
    // the GPU's expf/logf) against double: Float32 (a sum of probabilities, each within a few ulps; 1e-7 measured).
    // Tight enough that skipping q's F16 rounding (2e-5 to 5e-5 here) fails.
    private const double ScoreSums = Float32;

    /// <summary>One sequence of a scores case: cached <paramref name="Start"/> positions, <paramref name="Rows"/> new
    /// rows, scored from row <paramref name="From"/> (-1: not scored), with <paramref name="Gumbel"/> noise at τ
    /// <paramref name="Tau"/>, RoPE positions <paramref name="Shift"/> past its cache positions (a budgeted sequence).</summary>
    private readonly record struct ScoredSeq(int Start, int Rows, int From, bool Gumbel = false, float Tau = 1f, int Shift = 0);

    private static IEnumerable<OpCase> ScoreCases()
    {
        // Prefill chunks scored from every row and from a later row, decode rows, an unscored sequence between them.
        yield return Scores(4, 2, 64, 16, [new(0, 20, 0), new(37, 1, 0), new(10, 4, -1), new(100, 5, 3)]);
        // GQA 6/2 with an odd head size, blocks of 8, Gumbel next to probability, RoPE positions past cache rows.
        yield return Scores(6, 2, 6, 8, [new(50, 1, 0, Gumbel: true, Tau: 1.7f, Shift: 300), new(0, 33, 0), new(12, 17, 16, Gumbel: true, Tau: 1f)], layer: 2);
        // Wide heads, one long decode (several 16-key pages and 128-thread blocks of positions).
        yield return Scores(2, 1, 128, 32, [new(700, 1, 0), new(3, 2, 1, Gumbel: true, Tau: 2f)]);
        // A draft tree (masked rows) scored whole, beside a chain.
        yield return Scores(4, 4, 64, 16, [new(30, 20, 0), new(5, 3, 2)], treeDepth: 5);
        // A pruned prompt's hidden rows: positions 12 .. 29 of sequence 0 are not there for this layer.
        yield return Scores(4, 2, 32, 16, [new(40, 1, 0), new(9, 6, 0)], hidden: (12, 30));
        // Sums over three layers (Gumbel draws differ per layer), after an earlier step scored on the same object:
        // a new step starts from zero, later layers add.
        yield return Scores(4, 2, 64, 16, [new(60, 1, 0, Gumbel: true, Tau: 1.3f), new(20, 9, 4)], layers: 3, hidden: (3, 7));
        // Attention itself over hidden rows (the outputs, not the scores): a range ending inside a 16-position page,
        // one covering whole pages, a decode row and a chain.
        yield return HiddenAttention(4, 2, 64, 16, [new(40, 1, 0), new(9, 6, 0)], (12, 30));
        yield return HiddenAttention(6, 3, 32, 8, [new(80, 12, 0), new(3, 1, 0)], (16, 64));
    }

    private static OpCase Scores(int heads, int kvHeads, int hd, int block, ScoredSeq[] seqs, int layer = 0, int treeDepth = 0,
        (int Start, int End)? hidden = null, int layers = 1)
    {
        string name = $"attention_scores {heads}/{kvHeads} heads hd {hd} block {block} seqs "
            + string.Join(",", seqs.Select(q => $"{q.Rows}@{q.Start}{(q.From < 0 ? "" : $" from {q.From}")}{(q.Gumbel ? $" gumbel {q.Tau}" : "")}{(q.Shift > 0 ? $" +{q.Shift}" : "")}"))
            + (layer > 0 ? $" layer {layer}" : "") + (layers > 1 ? $" layers {layers}" : "") + (treeDepth > 0 ? $" tree depth {treeDepth}" : "") + (hidden is { } hh ? $" hidden {hh.Start}..{hh.End}" : "");
        int kvDim = kvHeads * hd, n = seqs.Length, seed = Seed(name);
        int rows = seqs.Sum(x => x.Rows);
        var shape = seqs.Select(x => (x.Start, x.Rows)).ToArray();
        var (k, _, q) = AttentionInputs(shape, kvDim, rows * heads * hd, seed);
        var (tables, need, blocks) = ShuffledTables(shape, block, 3, seed);
        int[]? parents = treeDepth > 0 ? RandomTree(seqs[0].Rows, treeDepth, seed) : null;
        var config = AttentionConfig(heads, kvHeads, hd, seqs.Max(x => x.Start + x.Rows)) with { Layers = layer + layers };
        ulong noiseSeed = (ulong)seed * 0x9E3779B97F4A7C15UL;

        // The batch of the step (the same on every backend): sequence 0 is the tree when there is one.
        RaggedBatch Step()
        {
            var batch = new RaggedBatch(rows, n, need.Sum(), block);
            for (int i = 0; i < n; i++)
            {
                var x = seqs[i];
                int position = x.Shift > 0 ? x.Start + x.Shift : -1;
                if (i == 0 && parents is not null) batch.AddTree(new int[x.Rows], parents, x.Start, tables[i], position: position);
                else batch.Add(new int[x.Rows], x.Start, tables[i], position: position);
            }
            if (hidden is { } h) (batch.HiddenStart[0], batch.HiddenEnd[0]) = h;
            return batch;
        }
        AttentionScores Request(AttentionScores? scores = null)
        {
            scores ??= new AttentionScores();
            scores.Clear();
            for (int i = 0; i < n; i++)
                if (seqs[i].From >= 0)
                    scores.Request(i, seqs[i].From, seqs[i].Gumbel ? AttentionScoreKind.GumbelSoftmax : AttentionScoreKind.Probability, seqs[i].Tau, noiseSeed + (ulong)i);
            return scores;
        }

        return new OpCase("attention_scores", name, ScoreSums,
            b =>
            {
                using var cache = b.CreatePagedKvCache(config, blocks, block);
                // Every position's keys (the values do not matter here) in every layer scored.
                float[] keys = [.. k.SelectMany(x => x)];
                for (int l = layer; l < layer + layers; l++) StoreAll(b, cache, l, shape, tables, block, keys, keys);
                var batch = Step();
                using var qa = OpInputs.Upload(b, q);
                using var o = b.Allocate(rows * heads * hd);
                var scores = new AttentionScores();
                if (layers > 1)
                {
                    // An earlier step on the same object: sequence 0's last row alone, one layer.
                    scores.Request(0, seqs[0].Rows - 1);
                    scores.Begin(batch);
                    b.Attention(qa, cache, layer, batch, o, scores);
                }
                Request(scores);
                scores.Begin(batch);
                for (int l = layer; l < layer + layers; l++) b.Attention(qa, cache, l, batch, o, scores);
                var result = new List<float>();
                for (int i = 0; i < n; i++) result.AddRange(scores.Of(i).ToArray());
                return [.. result];
            },
            () =>
            {
                var batch = Step();
                var noise = Request();
                noise.Begin(batch);
                var result = new List<float>();
                double scale = 1 / Math.Sqrt(hd);
                for (int i = 0; i < n; i++)
                {
                    var x = seqs[i];
                    if (x.From < 0) continue;
                    var sums = new double[x.Start + x.Rows];
                    for (int l = layer; l < layer + layers; l++)
                    for (int j = x.From; j < x.Rows; j++)
                    {
                        int r = batch.RowStart[i] + j, own = x.Start + j;
                        for (int h = 0; h < heads; h++)
                        {
                            int kvh = h / (heads / kvHeads);
                            var z = new double[own + 1];
                            for (int p = 0; p <= own; p++)
                            {
                                bool visible = (hidden is not { } hd0 || i != 0 || p < hd0.Start || p >= hd0.End)
                                    && (p < x.Start || batch.Sees(r, p - x.Start));
                                if (!visible) { z[p] = double.NegativeInfinity; continue; }
                                double dot = 0;
                                for (int d = 0; d < hd; d++)
                                    dot += (double)(float)(Half)q[(r * heads + h) * hd + d] * (float)(Half)k[i][p * kvDim + kvh * hd + d];
                                z[p] = dot * scale;
                                if (x.Gumbel) z[p] = (z[p] + noise.Gumbel(i, l, h, p, batch.Positions[r])) / x.Tau;
                            }
                            double m = z.Max(), sum = z.Sum(v => Math.Exp(v - m));
                            for (int p = 0; p <= own; p++) sums[p] += Math.Exp(z[p] - m) / sum;
                        }
                    }
                    result.AddRange(sums.Select(v => (float)v));
                }
                return [.. result];
            });
    }

    // Attention's output when sequence 0 hides cache positions [hidden.Start, hidden.End) (a pruned prompt's rows
    // that skipped this layer): the definition is attention over the other positions only.
    private static OpCase HiddenAttention(int heads, int kvHeads, int hd, int block, ScoredSeq[] seqs, (int Start, int End) hidden)
    {
        string name = $"attention hidden {heads}/{kvHeads} heads hd {hd} block {block} seqs {Describe([.. seqs.Select(x => (x.Start, x.Rows))])} hidden {hidden.Start}..{hidden.End}";
        int kvDim = kvHeads * hd, n = seqs.Length, seed = Seed(name);
        int rows = seqs.Sum(x => x.Rows);
        var shape = seqs.Select(x => (x.Start, x.Rows)).ToArray();
        var (k, v, q) = AttentionInputs(shape, kvDim, rows * heads * hd, seed);
        var (tables, need, blocks) = ShuffledTables(shape, block, 3, seed);
        var config = AttentionConfig(heads, kvHeads, hd, seqs.Max(x => x.Start + x.Rows));
        return new OpCase("attention", name, F16Act,
            b =>
            {
                using var cache = b.CreatePagedKvCache(config, blocks, block);
                // The hidden positions get huge keys and values: attending to them at all would show.
                StoreAll(b, cache, 0, shape, tables, block,
                    [.. k.Select((x, i) => i == 0 ? Poison(x, kvDim, hidden) : x).SelectMany(x => x)],
                    [.. v.Select((x, i) => i == 0 ? Poison(x, kvDim, hidden) : x).SelectMany(x => x)]);
                var batch = new RaggedBatch(rows, n, need.Sum(), block);
                for (int i = 0; i < n; i++) batch.Add(new int[seqs[i].Rows], seqs[i].Start, tables[i]);
                (batch.HiddenStart[0], batch.HiddenEnd[0]) = hidden;
                return Attend(b, q, cache, batch, rows * heads * hd);
            },
            () =>
            {
                var o = new float[rows * heads * hd];
                double scale = 1 / Math.Sqrt(hd);
                for (int i = 0, row = 0; i < n; row += seqs[i].Rows, i++)
                    for (int j = 0; j < seqs[i].Rows; j++)
                        for (int h = 0; h < heads; h++)
                        {
                            int r = row + j, own = seqs[i].Start + j, kvh = h / (heads / kvHeads);
                            var w = new double[own + 1];
                            for (int p = 0; p <= own; p++)
                            {
                                if (i == 0 && p >= hidden.Start && p < hidden.End) { w[p] = double.NegativeInfinity; continue; }
                                double dot = 0;
                                for (int d = 0; d < hd; d++)
                                    dot += (double)(float)(Half)q[(r * heads + h) * hd + d] * (float)(Half)k[i][p * kvDim + kvh * hd + d];
                                w[p] = dot * scale;
                            }
                            double m = w.Max(), sum = w.Sum(x => Math.Exp(x - m));
                            for (int d = 0; d < hd; d++)
                            {
                                double acc = 0;
                                for (int p = 0; p <= own; p++) acc += Math.Exp(w[p] - m) / sum * (float)(Half)v[i][p * kvDim + kvh * hd + d];
                                o[(r * heads + h) * hd + d] = (float)acc;
                            }
                        }
                return o;
            });
    }

    // A copy of one sequence's keys or values with the positions in range set to 1000 (finite in F16).
    private static float[] Poison(float[] x, int kvDim, (int Start, int End) range)
    {
        var y = (float[])x.Clone();
        y.AsSpan(range.Start * kvDim, (range.End - range.Start) * kvDim).Fill(1000f);
        return y;
    }
}
