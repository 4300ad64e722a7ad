using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
            double sum = SumSquares(xr);
            float mean = (float)(sum / dim);
            float scale = 1.0f / MathF.Sqrt(mean + eps);
            TensorPrimitives.Multiply(xr, scale, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        }
    }

    /// <summary>Σ x² in double. Each square is exact in double; only the order of the additions differs from ggml's loop.</summary>
    internal static double SumSquares(ReadOnlySpan<float> x)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= 16)
        {
            Vector256<double> s0 = Vector256<double>.Zero, s1 = s0, s2 = s0, s3 = s0;
            ref float r = ref MemoryMarshal.GetReference(x);
            for (; i + 16 <= x.Length; i += 16)
            {
                var (a, b) = Vector256.Widen(Vector256.LoadUnsafe(ref r, (nuint)i));
                var (c, d) = Vector256.Widen(Vector256.LoadUnsafe(ref r, (nuint)i + 8));
                s0 += a * a;
                s1 += b * b;
                s2 += c * c;
                s3 += d * d;
            }
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < x.Length; i++) sum += (double)x[i] * x[i];
        return sum;
    }

    /// <summary>RoPE of rows at their own positions (a ragged batch: several sequences in one buffer). Pair i turns by
    /// pos · theta^(−2i/d) / factors[i] · freqScale, cos and sin times attnFactor: ggml's rope cache, the angle built
    /// by i float multiplications and then divided and scaled in that order, so the rounding is llama.cpp's.</summary>
    public static void Rope(float[] x, ReadOnlySpan<int> positions, int heads, int headDim, float theta, RopeLayout layout,
        float freqScale = 1f, float[]? factors = null, float attnFactor = 1f)
    {
        Span<float> cos = stackalloc float[headDim / 2];
        Span<float> sin = stackalloc float[headDim / 2];
        float thetaScale = MathF.Pow(theta, -2.0f / headDim);
        for (int r = 0; r < positions.Length; r++)
        {
            float t = positions[r];
            for (int i = 0; i < headDim / 2; i++)
            {
                // Exact for the plain case: t / 1 · 1 is t, and · 1 leaves cos and sin as they were.
                float a = (factors == null ? t : t / factors[i]) * freqScale;
                cos[i] = MathF.Cos(a) * attnFactor;
                sin[i] = MathF.Sin(a) * attnFactor;
                t *= thetaScale;
            }
            RopeRow(x, r, heads, headDim, layout, cos, sin);
        }
    }

    private static void RopeRow(float[] x, int r, int heads, int headDim, RopeLayout layout, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = headDim / 2;
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

    /// <summary>gate = gate / (1 + exp(-gate)) * up.</summary>
    public static void SwiGlu(float[] gate, float[] up, int count)
    {
        // In slices, so the exp terms fit a stack buffer: vectorized Exp, then x / (1 + e) * up.
        const int Slice = 512;
        Span<float> e = stackalloc float[Slice];
        for (int start = 0; start < count; start += Slice)
        {
            int len = Math.Min(Slice, count - start);
            var g = gate.AsSpan(start, len);
            var t = e[..len];
            TensorPrimitives.Negate(g, t);
            TensorPrimitives.Exp(t, t);
            TensorPrimitives.Add(t, 1.0f, t);
            TensorPrimitives.Divide(g, t, g);
            TensorPrimitives.Multiply(g, up.AsSpan(start, len), g);
        }
    }

    /// <summary>gate = gelu_tanh(gate) * up as ggml's CPU computes it: gate rounded to F16 and looked up in a table of
    /// the GELU of every F16 value, itself rounded to F16 (ggml_vec_geglu_f32 with GGML_GELU_FP16); below -10 the
    /// GELU is 0, from 10 on it is x.</summary>
    public static void GeGlu(float[] gate, float[] up, int count)
    {
        var table = GeluTable.Value;
        for (int i = 0; i < count; i++)
        {
            float x = gate[i];
            float g = x <= -10f ? 0f : x >= 10f ? x : table[BitConverter.HalfToUInt16Bits((Half)x)];
            gate[i] = g * up[i];
        }
    }

    /// <summary>GELU (tanh form, ggml_gelu_f32) of each F16 value, rounded to F16: ggml's table, as floats.</summary>
    private static readonly Lazy<float[]> GeluTable = new(() =>
    {
        var t = new float[1 << 16];
        for (int i = 0; i < t.Length; i++)
        {
            float x = (float)BitConverter.UInt16BitsToHalf((ushort)i);
            t[i] = (float)(Half)(0.5f * x * (1.0f + MathF.Tanh(0.79788456080286535588f * x * (1.0f + 0.044715f * x * x))));
        }
        return t;
    });

    /// <summary>The plain loop <see cref="SwiGlu"/> must agree with (to the last bits of exp), for tests.</summary>
    internal static void SwiGluScalar(float[] gate, float[] up, int count)
    {
        for (int i = 0; i < count; i++)
        {
            float x = gate[i];
            gate[i] = x / (1.0f + MathF.Exp(-x)) * up[i];
        }
    }
}
