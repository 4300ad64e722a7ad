using NUnit.Framework;
using Tessera.Quantization;

namespace Tessera.Tests.Quantization;

[TestFixture]
public class QuantizedMatMulTests
{
    private static IEnumerable<TestCaseData> Shapes()
    {
        foreach (var t in QuantTestUtil.WeightTypes)
        {
            int[] cols = GgmlTypeInfo.BlockSize(t) == 256 ? [256, 512] : [32, 64, 288];
            foreach (int c in cols)
                foreach (int batch in new[] { 1, 3, 7 })
                    yield return new TestCaseData(t, 5, c, batch);
        }
        // big enough to run in parallel chunks, with a row count that does not divide evenly
        yield return new TestCaseData(GgmlType.Q4_K, 1001, 512, 3);
        yield return new TestCaseData(GgmlType.Q6_K, 259, 768, 5);
        yield return new TestCaseData(GgmlType.Q8_0, 2053, 288, 1);
        yield return new TestCaseData(GgmlType.Q8_0, 1031, 288, 5); // packed tiles, activations packed once for all threads
        yield return new TestCaseData(GgmlType.Q4_0, 517, 320, 4);
        yield return new TestCaseData(GgmlType.F16, 777, 512, 2);
        // 33 x 2048 activation values: enough for the conversion itself to be shared by the threads
        yield return new TestCaseData(GgmlType.Q4_K, 67, 2048, 33);
        yield return new TestCaseData(GgmlType.Q8_0, 67, 2048, 33);
        yield return new TestCaseData(GgmlType.F16, 67, 2048, 33);
    }

    /// <summary>Every output must equal <see cref="VecDot.Compute"/> of its pair exactly (same kernel, same converted activations),
    /// and the naive dequantize-then-dot in double within the activation quantization error.</summary>
    [TestCaseSource(nameof(Shapes))]
    public void Multiply_MatchesPerPairVecDotAndNaiveReference(GgmlType type, int rows, int cols, int batch)
    {
        var rng = new Random(rows * 7 + cols * 3 + batch + (int)type);
        int rb = (int)GgmlTypeInfo.RowBytes(type, cols);
        byte[] weights = new byte[rows * rb];
        for (int r = 0; r < rows; r++) QuantTestUtil.RandomRow(type, cols, rng).CopyTo(weights, r * rb);
        float[] x = QuantTestUtil.RandomFloats(batch * cols, rng, 2f);
        float[] y = new float[batch * rows];
        byte[] scratch = new byte[QuantizedMatMul.ScratchBytes(type, cols, batch)];
        // F16 weights keep their activations as floats holding F16 values (F16Wide), every other type the vec-dot type's bytes.
        long actRow = type == GgmlType.F16 ? 4L * cols : GgmlTypeInfo.RowBytes(VecDotType.For(type), cols);
        Assert.That(scratch.Length, Is.EqualTo(batch * actRow));

        QuantizedMatMul.Multiply(type, weights, rows, cols, x, batch, y, scratch);

        GgmlType vt = VecDotType.For(type);
        for (int b = 0; b < batch; b++)
        {
            float[] xb = x.AsSpan(b * cols, cols).ToArray();
            byte[] a = QuantTestUtil.QuantizeActivations(type, xb);
            double[] e = QuantTestUtil.ActivationErrorBound(vt, xb);
            double[] av = QuantTestUtil.ActivationValues(vt, a, cols);
            for (int r = 0; r < rows; r++)
            {
                byte[] w = weights.AsSpan(r * rb, rb).ToArray();
                float want = type == GgmlType.F16 ? F16WideDot(w, xb) : VecDot.Compute(type, w, a, cols);
                Assert.That(y[b * rows + r], Is.EqualTo(want), $"y[{b},{r}] vs the single-pair kernel");

                float[] wf = QuantTestUtil.Dequantize(type, w, cols);
                double naive = 0, abs = 0, bound = 0;
                for (int i = 0; i < cols; i++)
                {
                    naive += wf[i] * (double)xb[i];
                    abs += Math.Abs(wf[i] * av[i]);
                    bound += Math.Abs(wf[i]) * e[i];
                }
                bound += QuantTestUtil.RoundingBound(cols, abs) + QuantTestUtil.Q8_1SumError(type, w, a, cols);
                Assert.That(Math.Abs(y[b * rows + r] - naive), Is.LessThanOrEqualTo(bound), $"y[{b},{r}] vs naive");
            }
        }
    }

    /// <summary>Scales and weights in the F16 subnormal range (below 2^-14), which the vectorized half conversions must
    /// widen exactly without float arithmetic on denormals: the tiles' (K-quant headers decoded four rows at a time,
    /// F16 weights widened 16 at a time) results must still equal the single-pair kernel's, which reads halves through
    /// the exact table. Realistic weights hold such values: F16 weights of std 0.02 have 0.24% subnormal halves, and a
    /// Q4_K super-block's d is about max|w| / 945.</summary>
    [TestCase(GgmlType.Q4_K, 1)]
    [TestCase(GgmlType.Q4_K, 3)]
    [TestCase(GgmlType.Q6_K, 1)]
    [TestCase(GgmlType.Q6_K, 2)]
    [TestCase(GgmlType.Q6_K, 5)] // the packed tile (Q6KTile.Pack)
    [TestCase(GgmlType.Q8_0, 2)]
    [TestCase(GgmlType.F16, 4)] // batch 1 is F16Wide.Dot itself; the exhaustive widening test covers it
    public void SubnormalHalves_MatchSinglePairKernel(GgmlType type, int batch)
    {
        const int rows = 9, cols = 512;
        var rng = new Random(77 + batch);
        int rb = (int)GgmlTypeInfo.RowBytes(type, cols);
        byte[] weights = new byte[rows * rb];
        for (int r = 0; r < rows; r++) QuantTestUtil.RandomRow(type, cols, rng).CopyTo(weights, r * rb);
        int subnormals = 0;
        if (type == GgmlType.F16)
        {
            // every third weight subnormal, every 97th a zero, both signs
            for (int i = 0; i < rows * cols; i++)
            {
                int sign = rng.Next(2) << 15;
                if (i % 3 == 0) { BitConverter.TryWriteBytes(weights.AsSpan(2 * i), (ushort)(sign | rng.Next(1, 0x400))); subnormals++; }
                else if (i % 97 == 0) BitConverter.TryWriteBytes(weights.AsSpan(2 * i), (ushort)sign);
            }
        }
        else
        {
            // the half scale fields of every other block subnormal: d (and dmin) at offsets the layout fixes
            int bb = GgmlTypeInfo.BlockBytes(type);
            int[] fields = type switch { GgmlType.Q4_K => [0, 2], GgmlType.Q6_K => [208], _ => [0] };
            for (int blk = 0; blk < weights.Length / bb; blk += 2)
                foreach (int off in fields)
                {
                    BitConverter.TryWriteBytes(weights.AsSpan(blk * bb + off), (ushort)rng.Next(1, 0x400));
                    subnormals++;
                }
        }
        Assert.That(subnormals, Is.GreaterThan(0));
        float[] x = QuantTestUtil.RandomFloats(batch * cols, rng, 2f);
        float[] y = new float[batch * rows];
        QuantizedMatMul.Multiply(type, weights, rows, cols, x, batch, y, new byte[QuantizedMatMul.ScratchBytes(type, cols, batch)]);
        for (int b = 0; b < batch; b++)
        {
            float[] xb = x.AsSpan(b * cols, cols).ToArray();
            byte[] a = type == GgmlType.F16 ? [] : QuantTestUtil.QuantizeActivations(type, xb);
            for (int r = 0; r < rows; r++)
            {
                byte[] w = weights.AsSpan(r * rb, rb).ToArray();
                float want = type == GgmlType.F16 ? F16WideDot(w, xb) : VecDot.Compute(type, w, a, cols);
                Assert.That(float.IsFinite(want) && want != 0, $"row {r}: a degenerate reference {want}");
                Assert.That(BitConverter.SingleToInt32Bits(y[b * rows + r]), Is.EqualTo(BitConverter.SingleToInt32Bits(want)),
                    $"y[{b},{r}] = {y[b * rows + r]}, the single-pair kernel gives {want}");
            }
        }
    }

    /// <summary>The F16 single-pair kernel, widening on the fly, over the activations rounded to F16.</summary>
    private static unsafe float F16WideDot(byte[] w, float[] x)
    {
        float[] rounded = new float[x.Length];
        fixed (float* px = x, pr = rounded)
        fixed (byte* pw = w)
        {
            F16Wide.RoundRow(px, pr, x.Length);
            return F16Wide.Dot(pw, (byte*)pr, x.Length);
        }
    }

    /// <summary>The serving scheduler batches rows of different sequences into one product, so a row's result must not
    /// depend on the rows beside it: every output of a batched product equals the same row multiplied alone, bit for bit.
    /// Batches large enough to take the register-blocked paths, odd row counts so tiles have leftovers.</summary>
    [TestCase(GgmlType.F16, 11, 96)]
    [TestCase(GgmlType.F16, 37, 200)]
    [TestCase(GgmlType.F16, 9, 1000)]
    [TestCase(GgmlType.Q8_0, 13, 256)]
    [TestCase(GgmlType.Q4_0, 13, 256)]
    [TestCase(GgmlType.Q4_K, 7, 512)]
    [TestCase(GgmlType.Q6_K, 7, 512)]
    [TestCase(GgmlType.BF16, 5, 64)]
    [TestCase(GgmlType.F32, 5, 70)]
    public void BatchedRows_EqualRowsMultipliedAlone(GgmlType type, int rows, int cols)
    {
        const int batch = 9;
        var rng = new Random(rows * 31 + cols);
        int rb = (int)GgmlTypeInfo.RowBytes(type, cols);
        byte[] weights = new byte[rows * rb];
        for (int r = 0; r < rows; r++) QuantTestUtil.RandomRow(type, cols, rng).CopyTo(weights, r * rb);
        float[] x = QuantTestUtil.RandomFloats(batch * cols, rng, 2f);
        float[] y = new float[batch * rows];
        QuantizedMatMul.Multiply(type, weights, rows, cols, x, batch, y, new byte[QuantizedMatMul.ScratchBytes(type, cols, batch)]);
        float[] alone = new float[rows];
        byte[] scratch1 = new byte[QuantizedMatMul.ScratchBytes(type, cols, 1)];
        for (int b = 0; b < batch; b++)
        {
            QuantizedMatMul.Multiply(type, weights, rows, cols, x.AsSpan(b * cols, cols), 1, alone, scratch1);
            for (int r = 0; r < rows; r++)
                Assert.That(BitConverter.SingleToInt32Bits(y[b * rows + r]), Is.EqualTo(BitConverter.SingleToInt32Bits(alone[r])),
                    $"row {b}, output {r}: {y[b * rows + r]} in the batch, {alone[r]} alone");
        }
    }

    [Test]
    public void PointerOverload_MatchesSpanOverload()
    {
        var rng = new Random(9);
        const int rows = 64, cols = 256, batch = 2;
        byte[] weights = new byte[rows * 144];
        for (int r = 0; r < rows; r++) QuantTestUtil.RandomRow(GgmlType.Q4_K, cols, rng).CopyTo(weights, r * 144);
        float[] x = QuantTestUtil.RandomFloats(batch * cols, rng);
        float[] y1 = new float[batch * rows], y2 = new float[batch * rows];
        byte[] scratch = new byte[QuantizedMatMul.ScratchBytes(GgmlType.Q4_K, cols, batch)];
        QuantizedMatMul.Multiply(GgmlType.Q4_K, weights, rows, cols, x, batch, y1, scratch);
        unsafe
        {
            fixed (byte* w = weights)
                QuantizedMatMul.Multiply(GgmlType.Q4_K, w, weights.LongLength, rows, cols, x, batch, y2, scratch);
        }
        Assert.That(y2, Is.EqualTo(y1));
    }

    [Test]
    public void BadArguments_Throw()
    {
        var y = new float[4];
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Multiply(GgmlType.Q8_0, new byte[34], 2, 32, new float[32], 1, y, new byte[34]));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Multiply(GgmlType.Q8_0, new byte[68], 2, 32, new float[32], 1, y, new byte[33]));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Multiply(GgmlType.Q8_0, new byte[68], 2, 32, new float[31], 1, y, new byte[34]));
        Assert.Throws<NotSupportedException>(() => QuantizedMatMul.ScratchBytes(GgmlType.TQ2_0, 256, 1));
    }
}
