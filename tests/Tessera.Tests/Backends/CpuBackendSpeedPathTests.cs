using NUnit.Framework;
using Tessera.Backends.Cpu;
using Tessera.Model;
using Tessera.Quantization;
using Tessera.Tests.Golden;
using Tessera.Tests.Quantization;

namespace Tessera.Tests.Backends;

/// <summary>The fast paths of the CPU backend against the plain ones they replace.</summary>
[TestFixture]
public unsafe class CpuBackendSpeedPathTests
{
    private static WeightTensor Random(GgmlType type, int rows, int cols, Random rng, List<byte[]> keep)
    {
        int rb = (int)GgmlTypeInfo.RowBytes(type, cols);
        var bytes = GC.AllocateArray<byte>(rows * rb, pinned: true);
        for (int r = 0; r < rows; r++) QuantTestUtil.RandomRow(type, cols, rng).CopyTo(bytes, r * rb);
        keep.Add(bytes);
        fixed (byte* p = bytes) return new WeightTensor("w", type, rows, cols, p, bytes.Length);
    }

    /// <summary>Fused products convert the activations once and share one dispatch; each output must equal its separate MatMul bit for bit,
    /// including when the weights' types differ (Q4_K_M mixes Q4_K and Q6_K) and the backend falls back to separate products.</summary>
    [TestCase(GgmlType.Q8_0, GgmlType.Q8_0, GgmlType.Q8_0, 1)]
    [TestCase(GgmlType.Q8_0, GgmlType.Q8_0, GgmlType.Q8_0, 5)]
    [TestCase(GgmlType.F16, GgmlType.F16, GgmlType.F16, 3)]
    [TestCase(GgmlType.Q4_K, GgmlType.Q4_K, GgmlType.Q6_K, 2)]
    public void MatMulShared_EqualsSeparateProducts(GgmlType t0, GgmlType t1, GgmlType t2, int batch)
    {
        var rng = new Random(17 + batch);
        var keep = new List<byte[]>();
        int cols = 512;
        var b = new CpuBackend();
        var w0 = b.Prepare(Random(t0, 700, cols, rng, keep));
        var w1 = b.Prepare(Random(t1, 96, cols, rng, keep));
        var w2 = b.Prepare(Random(t2, 301, cols, rng, keep));
        var x = b.Allocate(batch * cols);
        QuantTestUtil.RandomFloats(batch * cols, rng, 2f).CopyTo(((CpuActivation)x).Data, 0);
        Tessera.Backends.Activation Out(int n) => b.Allocate(batch * n);
        var (f0, f1, f2) = (Out(700), Out(96), Out(301));
        var (s0, s1, s2) = (Out(700), Out(96), Out(301));

        b.MatMulShared(x, batch, w0, f0, w1, f1, w2, f2);
        b.MatMul(w0, x, s0, batch);
        b.MatMul(w1, x, s1, batch);
        b.MatMul(w2, x, s2, batch);

        Assert.That(((CpuActivation)f0).Data, Is.EqualTo(((CpuActivation)s0).Data));
        Assert.That(((CpuActivation)f1).Data, Is.EqualTo(((CpuActivation)s1).Data));
        Assert.That(((CpuActivation)f2).Data, Is.EqualTo(((CpuActivation)s2).Data));
        GC.KeepAlive(keep);
    }

    /// <summary>The vectorized SwiGLU uses TensorPrimitives.Exp; it may differ from MathF.Exp in the last bits only.</summary>
    [Test]
    public void SwiGlu_MatchesScalarLoop()
    {
        var rng = new Random(5);
        int n = 3000; // not a multiple of the slice or vector width
        float[] g = QuantTestUtil.RandomFloats(n, rng, 20f), up = QuantTestUtil.RandomFloats(n, rng, 3f);
        float[] g2 = (float[])g.Clone();
        CpuOps.SwiGlu(g, up, n);
        CpuOps.SwiGluScalar(g2, up, n);
        for (int i = 0; i < n; i++)
            Assert.That(g[i], Is.EqualTo(g2[i]).Within(1e-6f * Math.Max(1f, Math.Abs(g2[i]))), $"element {i}");
    }

    [Test]
    public void SumSquares_MatchesDoubleLoop()
    {
        var rng = new Random(9);
        foreach (int n in new[] { 1, 15, 16, 17, 768, 2051 })
        {
            float[] x = QuantTestUtil.RandomFloats(n, rng, 100f);
            double want = 0;
            foreach (float v in x) want += (double)v * v;
            Assert.That(CpuOps.SumSquares(x), Is.EqualTo(want).Within(1e-13 * want), $"n={n}");
        }
    }

    /// <summary>A decode step allocates nothing on any thread once buffers exist (the brief's "no per-token allocation").
    /// The count is process-wide, so background work of earlier tests (a server's threads winding down, the JIT
    /// promoting methods) can land in a window; a per-token allocation would land in every one. So the test takes up to
    /// five windows of 8 steps and requires one of them to be clean.</summary>
    [Test]
    public void DecodeStep_AllocatesNothing()
    {
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        using var s = m.Model.CreateState(128, 16);
        int[] prompt = [1, 400, 500, 600];
        m.Model.Forward(s, prompt);
        int t = 700;
        for (int i = 0; i < 3; i++) m.Model.Forward(s, new ReadOnlySpan<int>(ref t)); // warm: JIT, thread-local scratch
        var windows = new List<long>();
        for (int w = 0; w < 5 && (windows.Count == 0 || windows[^1] != 0); w++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < 8; i++)
            {
                m.Model.Forward(s, new ReadOnlySpan<int>(ref t));
                t = Tessera.Sampling.Sampler.ArgMax(s.Logits);
            }
            windows.Add(GC.GetTotalAllocatedBytes(precise: true) - before);
        }
        Assert.That(windows.Min(), Is.EqualTo(0), $"bytes allocated by each window of 8 decode steps: {string.Join(", ", windows)}");
    }
}
