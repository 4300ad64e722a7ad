using NUnit.Framework;
using Tessera.Quantization;

namespace Tessera.Tests.Quantization;

[TestFixture]
public class DequantizeTests
{
    /// <summary>tinystories-656k-f32.gguf was written from the Q8_0 file, so its values are exactly dequantize_row_q8_0 of it.</summary>
    [Test]
    public void TinyStoriesQ8_0_DequantizesToTheF32FileBitForBit()
    {
        var q8 = TestGguf.Open(SharedData.Model("tinystories-656k-q8_0.gguf"));
        var f32 = TestGguf.Open(SharedData.Model("tinystories-656k-f32.gguf"));
        int compared = 0;
        foreach (var t in q8.Tensors.Values.Where(t => t.Type == GgmlType.Q8_0))
        {
            float[] expected = f32.Floats(f32.Tensors[t.Name]);
            float[] actual = new float[t.Elements];
            Dequantizer.DequantizeRow(GgmlType.Q8_0, q8.Bytes(t), actual);
            for (int i = 0; i < actual.Length; i++)
                if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                    Assert.Fail($"{t.Name}[{i}]: {actual[i]} != {expected[i]}");
            compared++;
        }
        Assert.That(compared, Is.GreaterThanOrEqualTo(7), "Q8_0 tensors compared");
    }

    /// <summary>The F16/BF16 files are llama.cpp's round-to-nearest-even conversions of the F32 weights: dequantizing must give
    /// exactly the F32 value rounded through our conversion.</summary>
    [TestCase("tinystories-656k-f16.gguf", "tinystories-656k-f32.gguf")]
    [TestCase("tinystories-656k-bf16.gguf", "tinystories-656k-f32.gguf")]
    [TestCase("rand-llama-d256-f16.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-bf16.gguf", "rand-llama-d256-f32.gguf")]
    public void HalfFiles_AreRoundedF32(string file, string reference)
    {
        var g = TestGguf.Open(SharedData.Model(file));
        var r = TestGguf.Open(SharedData.Model(reference));
        int compared = 0;
        foreach (var t in g.Tensors.Values.Where(t => t.Type is GgmlType.F16 or GgmlType.BF16))
        {
            float[] f = r.Floats(r.Tensors[t.Name]);
            float[] actual = new float[t.Elements];
            Dequantizer.DequantizeRow(t.Type, g.Bytes(t), actual);
            for (int i = 0; i < f.Length; i++)
            {
                float expected = t.Type == GgmlType.F16 ? Fp16.ToSingle(Fp16.FromSingle(f[i])) : BFloat16.ToSingle(BFloat16.FromSingle(f[i]));
                if (actual[i] != expected) Assert.Fail($"{t.Name}[{i}]: {actual[i]} != {expected} (from {f[i]})");
            }
            compared++;
        }
        Assert.That(compared, Is.GreaterThan(0));
    }

    /// <summary>Relative RMS error bounds of a re-quantization, per type. Theory for b-bit uniform quantization with a per-block scale:
    /// error RMS = step/√12 with step ≈ range/(2^b - 1); for blocks of 16-32 roughly normal weights the block range is 4-5 σ, so
    /// Q4 ≈ 0.08, Q5 ≈ 0.04, Q6 ≈ 0.02, Q3 ≈ 0.17, Q2 (4 levels, block min) ≈ 0.35. Bounds sit about 1.5x above that.
    /// A layout error (wrong nibble, bit or scale order) decorrelates values from the reference and gives ≥ 1.</summary>
    private static double Bound(GgmlType t) => t switch
    {
        GgmlType.Q8_0 => 0.01,
        GgmlType.Q6_K => 0.035,
        GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q5_K => 0.07,
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q4_K or GgmlType.IQ4_NL => 0.13,
        GgmlType.Q3_K => 0.25,
        GgmlType.Q2_K => 0.5,
        _ => throw new ArgumentException(t.ToString()),
    };

    [TestCase("tinystories-656k-q4_0.gguf", "tinystories-656k-f32.gguf")]
    [TestCase("tinystories-656k-q4_1.gguf", "tinystories-656k-f32.gguf")]
    [TestCase("tinystories-656k-q5_0.gguf", "tinystories-656k-f32.gguf")]
    [TestCase("tinystories-656k-q5_1.gguf", "tinystories-656k-f32.gguf")]
    [TestCase("tinystories-656k-q4_k_m.gguf", "tinystories-656k-f32.gguf")]
    [TestCase("tinystories-656k-q6_k.gguf", "tinystories-656k-f32.gguf")]
    [TestCase("rand-llama-d256-q8_0.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-q4_0.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-q4_1.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-q5_0.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-q5_1.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-q2_k.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-q3_k_m.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-q4_k_m.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-q5_k_m.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-q6_k.gguf", "rand-llama-d256-f32.gguf")]
    [TestCase("rand-llama-d256-iq4_nl.gguf", "rand-llama-d256-f32.gguf")]
    public void Requantized_IsCloseToF32(string file, string reference)
    {
        var g = TestGguf.Open(SharedData.Model(file));
        var r = TestGguf.Open(SharedData.Model(reference));
        var seen = new HashSet<GgmlType>();
        foreach (var t in g.Tensors.Values.Where(t => t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)))
        {
            float[] f = r.Floats(r.Tensors[t.Name]);
            float[] actual = new float[t.Elements];
            Dequantizer.DequantizeRow(t.Type, g.Bytes(t), actual);
            double err = 0, norm = 0;
            for (int i = 0; i < f.Length; i++)
            {
                double e = actual[i] - (double)f[i];
                err += e * e;
                norm += (double)f[i] * f[i];
            }
            double rel = Math.Sqrt(err / norm);
            TestContext.Out.WriteLine($"{t.Name,-28} {t.Type,-7} rel RMS {rel:F5}");
            Assert.That(rel, Is.LessThan(Bound(t.Type)), $"{t.Name} ({t.Type})");
            seen.Add(t.Type);
        }
        Assert.That(seen, Is.Not.Empty);
        TestContext.Out.WriteLine("types: " + string.Join(", ", seen));
    }

    [Test]
    public void OddRowLengths_MatchWholeRow()
    {
        // Dequantizing a row block by block must give the same values as the whole row (no state leaks between blocks).
        var rng = new Random(5);
        foreach (var type in QuantTestUtil.WeightTypes)
        {
            int bs = GgmlTypeInfo.BlockSize(type) == 1 ? 32 : GgmlTypeInfo.BlockSize(type);
            int n = bs * 3;
            byte[] row = QuantTestUtil.RandomRow(type, n, rng);
            float[] whole = QuantTestUtil.Dequantize(type, row, n);
            int bb = (int)GgmlTypeInfo.RowBytes(type, bs);
            for (int b = 0; b < 3; b++)
                Assert.That(QuantTestUtil.Dequantize(type, row.AsSpan(b * bb, bb), bs), Is.EqualTo(whole.AsSpan(b * bs, bs).ToArray()), $"{type} block {b}");
        }
    }

    [Test]
    public void UnsupportedType_ThrowsNamingIt()
    {
        var ex = Assert.Throws<NotSupportedException>(() => Dequantizer.DequantizeRow(GgmlType.IQ2_XXS, new byte[66], new float[256]));
        Assert.That(ex!.Message, Does.Contain("IQ2_XXS"));
    }

    [Test]
    public void WrongSourceLength_Throws()
        => Assert.Throws<ArgumentException>(() => Dequantizer.DequantizeRow(GgmlType.Q4_0, new byte[17], new float[32]));
}
