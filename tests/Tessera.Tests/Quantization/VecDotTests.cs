using NUnit.Framework;
using Tessera.Quantization;

namespace Tessera.Tests.Quantization;

[TestFixture]
public class VecDotTests
{
    [Test]
    public void VecDotTypes_AreLlamaCpps()
    {
        Assert.That(VecDotType.For(GgmlType.F32), Is.EqualTo(GgmlType.F32));
        Assert.That(VecDotType.For(GgmlType.F16), Is.EqualTo(GgmlType.F16));
        Assert.That(VecDotType.For(GgmlType.BF16), Is.EqualTo(GgmlType.BF16));
        foreach (var t in new[] { GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q8_0, GgmlType.IQ4_NL })
            Assert.That(VecDotType.For(t), Is.EqualTo(GgmlType.Q8_0), t.ToString());
        foreach (var t in new[] { GgmlType.Q4_1, GgmlType.Q5_1 })
            Assert.That(VecDotType.For(t), Is.EqualTo(GgmlType.Q8_1), t.ToString());
        foreach (var t in new[] { GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
            Assert.That(VecDotType.For(t), Is.EqualTo(GgmlType.Q8_K), t.ToString());
        var ex = Assert.Throws<NotSupportedException>(() => VecDotType.For(GgmlType.IQ3_S));
        Assert.That(ex!.Message, Does.Contain("IQ3_S"));
    }

    /// <summary>Checks one weight row against float activations two ways:
    /// (1) tight: against the exact (double) product of the dequantized weights and the dequantized converted activations, within
    /// float rounding (plus the Q8_1 sum-field rounding) — this pins the integer kernels and the scale math;
    /// (2) against the float activations themselves, within the activation quantization error Σ|w_i|·e_i derived from the
    /// quantizer formulas (<see cref="QuantTestUtil.ActivationErrorBound"/>).</summary>
    private static void CheckRow(GgmlType type, byte[] w, float[] x, string what, bool scalar = false)
    {
        int n = x.Length;
        GgmlType vt = VecDotType.For(type);
        byte[] a = QuantTestUtil.QuantizeActivations(type, x);
        float got = scalar ? VecDot.ComputeScalar(type, w, a, n) : VecDot.Compute(type, w, a, n);
        float[] wf = QuantTestUtil.Dequantize(type, w, n);
        double[] av = QuantTestUtil.ActivationValues(vt, a, n);

        double exact = 0, abs = 0;
        for (int i = 0; i < n; i++) { exact += wf[i] * av[i]; abs += Math.Abs(wf[i] * av[i]); }
        double tight = QuantTestUtil.RoundingBound(n, abs) + QuantTestUtil.Q8_1SumError(type, w, a, n);
        Assert.That(Math.Abs(got - exact), Is.LessThanOrEqualTo(tight), $"{what}: {type} n={n} vs dequantized product (got {got}, exact {exact})");

        double[] e = QuantTestUtil.ActivationErrorBound(vt, x);
        double vsX = 0, loose = tight;
        for (int i = 0; i < n; i++) { vsX += wf[i] * (double)x[i]; loose += Math.Abs(wf[i]) * e[i]; }
        Assert.That(Math.Abs(got - vsX), Is.LessThanOrEqualTo(loose), $"{what}: {type} n={n} vs float activations (got {got}, want {vsX})");
    }

    private static IEnumerable<TestCaseData> Files()
    {
        string[] files =
        [
            "tinystories-656k-q8_0.gguf", "tinystories-656k-f32.gguf", "tinystories-656k-f16.gguf", "tinystories-656k-bf16.gguf",
            "tinystories-656k-q4_0.gguf", "tinystories-656k-q4_1.gguf", "tinystories-656k-q5_0.gguf", "tinystories-656k-q5_1.gguf",
            "rand-llama-d256-q2_k.gguf", "rand-llama-d256-q3_k_m.gguf", "rand-llama-d256-q4_k_m.gguf", "rand-llama-d256-q5_k_m.gguf",
            "rand-llama-d256-q6_k.gguf", "rand-llama-d256-iq4_nl.gguf",
        ];
        return files.Select(f => new TestCaseData(f).SetArgDisplayNames(f));
    }

    [TestCaseSource(nameof(Files))]
    public void RealWeights_VecDotMatchesDequantizedProduct(string file)
    {
        var g = TestGguf.Open(SharedData.Model(file));
        var rng = new Random(11);
        int checkedRows = 0;
        foreach (var t in g.Tensors.Values.Where(t => t.Dims.Length == 2))
        {
            for (int r = 0; r < Math.Min(3, t.Rows); r++)
            {
                float[] x = QuantTestUtil.RandomFloats(t.Cols, rng, 2f);
                CheckRow(t.Type, g.Row(t, r).ToArray(), x, $"{t.Name} row {r}");
                CheckRow(t.Type, g.Row(t, r).ToArray(), x, $"{t.Name} row {r} (scalar)", scalar: true);
                checkedRows++;
            }
        }
        Assert.That(checkedRows, Is.GreaterThan(0));
    }

    private static IEnumerable<TestCaseData> TypesAndLengths()
    {
        foreach (var t in QuantTestUtil.WeightTypes)
        {
            int[] lengths = GgmlTypeInfo.BlockSize(t) == 256 ? [256, 512, 2048]
                : GgmlTypeInfo.BlockSize(t) == 32 ? [32, 64, 288, 4096]
                : [1, 7, 15, 16, 17, 63, 64, 65, 288, 1000, 4099];
            foreach (int n in lengths) yield return new TestCaseData(t, n);
        }
    }

    [TestCaseSource(nameof(TypesAndLengths))]
    public void RandomBlocks_VecDotMatchesDequantizedProduct(GgmlType type, int n)
    {
        var rng = new Random(n * 31 + (int)type);
        for (int rep = 0; rep < 4; rep++)
        {
            byte[] w = QuantTestUtil.RandomRow(type, n, rng);
            float[] x = QuantTestUtil.RandomFloats(n, rng, rep == 3 ? 1e-3f : 3f);
            if (rep == 2 && n >= 64) Array.Clear(x, 0, 32); // an all-zero activation block
            CheckRow(type, w, x, $"rep {rep}");
            CheckRow(type, w, x, $"rep {rep} (scalar)", scalar: true);
        }
    }

    /// <summary>The SIMD kernel (what <see cref="VecDot.Compute"/> runs here) against the scalar port of ggml's generic C:
    /// the integer sums are identical, so the two may differ only by float rounding order.</summary>
    [TestCaseSource(nameof(TypesAndLengths))]
    public void Simd_EqualsScalar(GgmlType type, int n)
    {
        var rng = new Random(n * 17 + (int)type);
        for (int rep = 0; rep < 8; rep++)
        {
            byte[] w = QuantTestUtil.RandomRow(type, n, rng);
            byte[] a = QuantTestUtil.QuantizeActivations(type, QuantTestUtil.RandomFloats(n, rng, 5f));
            float simd = VecDot.Compute(type, w, a, n);
            float scalar = VecDot.ComputeScalar(type, w, a, n);
            float[] wf = QuantTestUtil.Dequantize(type, w, n);
            double[] av = QuantTestUtil.ActivationValues(VecDotType.For(type), a, n);
            double abs = 0;
            for (int i = 0; i < n; i++) abs += Math.Abs(wf[i] * av[i]);
            Assert.That(Math.Abs(simd - scalar), Is.LessThanOrEqualTo(2 * QuantTestUtil.RoundingBound(n, abs)),
                $"{type} n={n} rep {rep}: simd {simd} scalar {scalar}");
        }
    }

    [Test]
    public void F32_IsExactToFloatRounding()
    {
        var rng = new Random(3);
        foreach (int n in new[] { 1, 5, 64, 100, 1023, 4096 })
        {
            float[] w = QuantTestUtil.RandomFloats(n, rng), x = QuantTestUtil.RandomFloats(n, rng);
            byte[] wb = System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.AsSpan()).ToArray();
            byte[] xb = QuantTestUtil.QuantizeActivations(GgmlType.F32, x);
            double exact = 0, abs = 0;
            for (int i = 0; i < n; i++) { exact += (double)w[i] * x[i]; abs += Math.Abs((double)w[i] * x[i]); }
            float got = VecDot.Compute(GgmlType.F32, wb, xb, n);
            float scalar = VecDot.ComputeScalar(GgmlType.F32, wb, xb, n);
            Assert.That(Math.Abs(got - exact), Is.LessThanOrEqualTo(QuantTestUtil.RoundingBound(n, abs)), $"n={n}");
            // the scalar reference sums in double: only the final rounding (and the per-product rounding) remain.
            Assert.That(Math.Abs(scalar - exact), Is.LessThanOrEqualTo(Math.Abs(exact) * 6e-8 + abs * 6e-8), $"n={n} scalar");
        }
    }

    [Test]
    public void WrongRowLengths_Throw()
    {
        Assert.Throws<ArgumentException>(() => VecDot.Compute(GgmlType.Q4_0, new byte[18], new byte[36], 32));
        Assert.Throws<ArgumentException>(() => VecDot.Compute(GgmlType.Q4_0, new byte[19], new byte[34], 32));
        Assert.Throws<NotSupportedException>(() => VecDot.Compute(GgmlType.IQ4_XS, new byte[136], new byte[292], 256));
    }
}
