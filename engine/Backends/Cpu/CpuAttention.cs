using System.Numerics.Tensors;
using Tessera.Model;

namespace Tessera.Backends.Cpu;

/// <summary>
/// Causal grouped-query attention over an F16 cache, following llama.cpp's non-flash CPU path: scores are
/// F16(q)·K scaled by 1/sqrt(d), softmax in float with the sum in double, probabilities rounded to F16 before the
/// product with V. Query head h reads key/value head h / (heads / kv_heads).
/// </summary>
internal static class CpuAttention
{
    public static void Compute(float[] q, Half[] k, Half[] v, LlamaConfig c, int rows, int startPos, float[] output)
    {
        int heads = c.Heads, hd = c.HeadDim, kvDim = c.KvDim, group = c.GroupSize;
        float scale = 1.0f / MathF.Sqrt(hd);
        int work = rows * heads;
        // Each (row, head) is independent; parallelize when there is enough of it.
        Parallel.For(0, work, new ParallelOptions { MaxDegreeOfParallelism = work >= 4 ? -1 : 1 }, () => new Scratch(startPos + rows, hd),
            (item, _, s) =>
            {
                int r = item / heads, h = item % heads;
                int pos = startPos + r;
                int kvh = h / group;
                int n = pos + 1;
                var qh = s.Q.AsSpan(0, hd);
                // llama.cpp converts q to the cache type (F16) before the dot product.
                for (int i = 0; i < hd; i++) qh[i] = (float)(Half)q[(r * heads + h) * hd + i];
                var scores = s.Scores.AsSpan(0, n);
                var row = s.Row.AsSpan(0, hd);
                for (int p = 0; p < n; p++)
                {
                    TensorPrimitives.ConvertToSingle(k.AsSpan(p * kvDim + kvh * hd, hd), row);
                    scores[p] = TensorPrimitives.Dot(qh, row) * scale;
                }
                float max = TensorPrimitives.Max(scores);
                double sum = 0;
                for (int p = 0; p < n; p++)
                {
                    float e = MathF.Exp(scores[p] - max);
                    scores[p] = e;
                    sum += e;
                }
                float inv = (float)(1.0 / sum);
                var o = output.AsSpan((r * heads + h) * hd, hd);
                o.Clear();
                for (int p = 0; p < n; p++)
                {
                    float w = (float)(Half)(scores[p] * inv);
                    TensorPrimitives.ConvertToSingle(v.AsSpan(p * kvDim + kvh * hd, hd), row);
                    TensorPrimitives.MultiplyAdd(row, w, o, o);
                }
                return s;
            }, _ => { });
    }

    private sealed class Scratch(int n, int hd)
    {
        public readonly float[] Scores = new float[n];
        public readonly float[] Q = new float[hd];
        public readonly float[] Row = new float[hd];
    }
}
