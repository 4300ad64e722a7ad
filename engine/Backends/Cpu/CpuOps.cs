using System.Numerics.Tensors;
using Tessera.Model;

namespace Tessera.Backends.Cpu;

/// <summary>Element-wise and per-row CPU ops, written to follow llama.cpp's CPU numerics.</summary>
internal static class CpuOps
{
    /// <summary>y = x * (1 / sqrt(mean(x²) + eps)) * w, the sum of squares in double as ggml does.</summary>
    public static void RmsNorm(float[] x, float[] w, float[] y, int rows, float eps)
    {
        int dim = w.Length;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.AsSpan(r * dim, dim);
            var yr = y.AsSpan(r * dim, dim);
            double sum = 0;
            foreach (float v in xr) sum += (double)v * v;
            float mean = (float)(sum / dim);
            float scale = 1.0f / MathF.Sqrt(mean + eps);
            TensorPrimitives.Multiply(xr, scale, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        }
    }

    /// <summary>
    /// RoPE in place. The angle for pair i is pos * theta^(-2i/d), built by repeated float multiplication as
    /// ggml's rope cache does, so the rounding matches llama.cpp.
    /// </summary>
    public static void Rope(float[] x, int rows, int heads, int headDim, int startPos, float theta, RopeLayout layout)
    {
        int half = headDim / 2;
        Span<float> cos = stackalloc float[half];
        Span<float> sin = stackalloc float[half];
        float thetaScale = MathF.Pow(theta, -2.0f / headDim);
        for (int r = 0; r < rows; r++)
        {
            float t = startPos + r;
            for (int i = 0; i < half; i++)
            {
                cos[i] = MathF.Cos(t);
                sin[i] = MathF.Sin(t);
                t *= thetaScale;
            }
            for (int h = 0; h < heads; h++)
            {
                var v = x.AsSpan((r * heads + h) * headDim, headDim);
                if (layout == RopeLayout.AdjacentPairs)
                {
                    for (int i = 0; i < half; i++)
                    {
                        float x0 = v[2 * i], x1 = v[2 * i + 1];
                        v[2 * i] = x0 * cos[i] - x1 * sin[i];
                        v[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
                    }
                }
                else
                {
                    for (int i = 0; i < half; i++)
                    {
                        float x0 = v[i], x1 = v[i + half];
                        v[i] = x0 * cos[i] - x1 * sin[i];
                        v[i + half] = x0 * sin[i] + x1 * cos[i];
                    }
                }
            }
        }
    }

    /// <summary>gate = gate / (1 + exp(-gate)) * up.</summary>
    public static void SwiGlu(float[] gate, float[] up, int count)
    {
        var g = gate.AsSpan(0, count);
        for (int i = 0; i < g.Length; i++)
        {
            float x = g[i];
            g[i] = x / (1.0f + MathF.Exp(-x)) * up[i];
        }
    }
}
