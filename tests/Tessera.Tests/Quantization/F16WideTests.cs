using Tessera.Quantization;
using NUnit.Framework;

namespace Tessera.Tests.Quantization;

/// <summary>The F16 product's two paths (widen on the fly for one activation row, widen once for many) must agree bit for
/// bit, widen exactly (specials included), and agree with the double-precision reference to float rounding.</summary>
[TestFixture]
public unsafe class F16WideTests
{
    private static (byte[] W, float[] A) Rows(int rows, int n, int seed)
    {
        var rng = new Random(seed);
        byte[] w = new byte[rows * n * 2];
        for (int r = 0; r < rows; r++) QuantTestUtil.RandomRow(GgmlType.F16, n, rng).CopyTo(w, r * n * 2);
        float[] x = QuantTestUtil.RandomFloats(n, rng, 3f), a = new float[n];
        fixed (float* px = x, pa = a) F16Wide.RoundRow(px, pa, n);
        return (w, a);
    }

    [TestCase(1)] [TestCase(7)] [TestCase(15)] [TestCase(16)] [TestCase(17)] [TestCase(31)] [TestCase(32)] [TestCase(33)]
    [TestCase(48)] [TestCase(100)] [TestCase(768)] [TestCase(2050)]
    public void WidenedPaths_EqualOnTheFlyDot_BitForBit(int n)
    {
        var (w, a) = Rows(5, n, n);
        float[] wf = new float[5 * n];
        float* y4 = stackalloc float[4];
        fixed (byte* pw = w)
        fixed (float* pa = a, pf = wf)
        {
            for (int r = 0; r < 5; r++) F16Wide.WidenRow(pw + r * n * 2, pf + r * n, n);
            F16Wide.DotWidened4(pf, n, pa, n, y4);
            for (int r = 0; r < 5; r++)
            {
                float fly = F16Wide.Dot(pw + r * n * 2, (byte*)pa, n);
                Assert.That(F16Wide.DotWidened(pf + r * n, pa, n), Is.EqualTo(fly), $"row {r}: DotWidened");
                if (r < 4) Assert.That(y4[r], Is.EqualTo(fly), $"row {r}: DotWidened4");
                double exact = 0, abs = 0;
                for (int i = 0; i < n; i++)
                {
                    double p = (double)Fp16.ToSingle(BitConverter.ToUInt16(w, (r * n + i) * 2)) * a[i];
                    exact += p;
                    abs += Math.Abs(p);
                }
                Assert.That(Math.Abs(fly - exact), Is.LessThanOrEqualTo(QuantTestUtil.RoundingBound(n, abs)), $"row {r} vs double");
            }
        }
    }

    /// <summary>With a one-hot activation the dot product is the weight itself, so every half (subnormals, the largest
    /// finite, both infinities, NaN, negative zero) must come out as the exact float, through both lanes' paths.</summary>
    [Test]
    public void Widening_IsExactForEveryHalf()
    {
        const int n = 40; // a full 32-chunk and a scalar tail, so a position exercises vector or scalar widening
        byte[] w = new byte[n * 2];
        float[] a = new float[n];
        fixed (byte* pw = w)
        fixed (float* pa = a)
        {
            for (int bits = 0; bits < 65536; bits++)
            {
                int pos = bits % n;
                Array.Clear(w);
                Array.Clear(a);
                BitConverter.TryWriteBytes(w.AsSpan(pos * 2), (ushort)bits);
                a[pos] = 1f;
                float want = (float)BitConverter.UInt16BitsToHalf((ushort)bits);
                float got = F16Wide.Dot(pw, (byte*)pa, n);
                if (float.IsNaN(want)) Assert.That(float.IsNaN(got), $"0x{bits:x4} at {pos}");
                else Assert.That(got, Is.EqualTo(want + 0f), $"0x{bits:x4} at {pos}"); // the sum adds +0, so -0 reads as +0
            }
        }
    }

    [Test]
    public void RoundRow_RoundsToNearestHalf()
    {
        float[] x = [1f + 1f / 4096, 1f + 3f / 4096, 65519f, 65520f, 1e-8f, -2.5f], y = new float[x.Length];
        fixed (float* px = x, py = y) F16Wide.RoundRow(px, py, x.Length);
        Assert.That(y, Is.EqualTo(new[] { 1f, 1f + 4f / 4096, 65504f, float.PositiveInfinity, 0f, -2.5f }));
    }
}
