using System.Buffers.Binary;
using NUnit.Framework;
using Tessera.Formats.Gguf;
using Tessera.Quantization;

namespace Tessera.Tests.Quantization;

/// <summary>The weight quantizers: round-trip error against the dequantizers, bounded by each type's step size, and
/// byte-for-byte agreement with files that llama.cpp's quantizer wrote from the F32 files in ../shared.</summary>
[TestFixture]
public class WeightQuantizerTests
{
    private static readonly GgmlType[] Types = [GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q6_K];

    private static float[] Normal(int n, double std, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
            x[i] = (float)(std * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return x;
    }

    private static (byte[] Q, float[] Y) RoundTrip(GgmlType type, float[] x)
    {
        var q = new byte[GgmlTypeInfo.RowBytes(type, x.Length)];
        WeightQuantizer.QuantizeRow(type, x, q);
        var y = new float[x.Length];
        Dequantizer.DequantizeRow(type, q, y);
        return (q, y);
    }

    private static float Half(byte[] q, int offset) => Fp16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(q.AsSpan(offset)));

    /// <summary>Per-element error bounds derived from each format's step: an element inside the representable range is off
    /// by at most half a step (plus the f16 rounding of the scale, 2^-11 relative, times the largest quant); one clamped at
    /// the range's end (the extreme value of Q4_0/Q5_0, or a K-quant sub-block whose 6- or 8-bit scale was rounded down)
    /// by the scale's own quantization error times the largest quant on top of that.</summary>
    private static double[] Bounds(GgmlType type, byte[] q, float[] x)
    {
        int n = x.Length;
        var e = new double[n];
        const double f16 = 1.0 / 2048;
        switch (type)
        {
            case GgmlType.F16:
                for (int i = 0; i < n; i++) e[i] = Math.Abs(x[i]) * f16 + Math.Pow(2, -25); // half an ulp, ulp <= |x| 2^-10
                break;
            case GgmlType.BF16:
                for (int i = 0; i < n; i++) e[i] = Math.Abs(x[i]) / 256; // half an ulp, ulp <= |x| 2^-7
                break;
            case GgmlType.Q8_0:
            case GgmlType.Q4_0:
            case GgmlType.Q5_0:
            {
                int bb = GgmlTypeInfo.BlockBytes(type), qmax = type == GgmlType.Q8_0 ? 127 : type == GgmlType.Q4_0 ? 8 : 16;
                for (int i = 0; i < n; i++)
                {
                    double amax = 0;
                    for (int j = i / 32 * 32; j < i / 32 * 32 + 32; j++) amax = Math.Max(amax, Math.Abs(x[j]));
                    double d = amax / qmax;
                    // Q4_0/Q5_0 map the extreme value to -qmax, so its opposite (+qmax) clamps to qmax-1: one full step.
                    bool clamped = type != GgmlType.Q8_0 && Math.Abs(x[i] / d) > qmax - 0.5;
                    e[i] = d * ((clamped ? 1.0 : 0.5) + qmax * f16) * 1.0001;
                }
                break;
            }
            case GgmlType.Q4_K:
                for (int blk = 0; blk < n / 256; blk++)
                {
                    int o = blk * 144;
                    double d = Half(q, o), dmin = Half(q, o + 2);
                    for (int j = 0; j < 8; j++)
                    {
                        GetScaleMin(j, q.AsSpan(o + 4, 12), out int sc, out int m);
                        double step = d * sc, lo = -dmin * m, hi = lo + 15 * step;
                        for (int l = 0; l < 32; l++)
                        {
                            int i = blk * 256 + j * 32 + l;
                            bool inside = x[i] >= lo - step / 2 && x[i] <= hi + step / 2;
                            // Outside the range: the weighted least-squares fit (make_qkx2_quants) may leave an extreme up
                            // to a step beyond its last level, and the 6-bit scale and min are each rounded by at most
                            // half their unit (d, dmin), which moves the top level by 15 d/2 + dmin/2.
                            e[i] = (inside ? step / 2 : step + 15 * d / 2 + dmin / 2) * 1.0001 + 1e-9;
                        }
                    }
                }
                break;
            case GgmlType.Q6_K:
                for (int blk = 0; blk < n / 256; blk++)
                {
                    int o = blk * 210;
                    double d = Half(q, o + 208);
                    for (int j = 0; j < 16; j++)
                    {
                        double step = Math.Abs(d * (sbyte)q[o + 192 + j]);
                        for (int l = 0; l < 16; l++)
                        {
                            int i = blk * 256 + j * 16 + l;
                            bool inside = Math.Abs(x[i]) <= 31.5 * step;
                            // The int8 sub-block scale is rounded by at most half of d, times at most 32 quants.
                            e[i] = (step / 2 + (inside ? 0 : 32 * Math.Abs(d) / 2)) * 1.0001 + 1e-9;
                        }
                    }
                }
                break;
        }
        return e;
    }

    private static void GetScaleMin(int j, ReadOnlySpan<byte> q, out int d, out int m)
    {
        if (j < 4) { d = q[j] & 63; m = q[j + 4] & 63; }
        else { d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
    }

    [Test]
    public void RoundTripErrorIsWithinTheStepBound([ValueSource(nameof(Types))] GgmlType type, [Values(0.02, 1.0)] double std)
    {
        float[] x = Normal(256 * 256, std, (int)type * 7 + (int)(std * 100));
        var (q, y) = RoundTrip(type, x);
        double[] bound = Bounds(type, q, x);
        int worst = -1;
        double worstRatio = 0, se = 0, sx = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double err = Math.Abs(y[i] - x[i]);
            if (err / bound[i] > worstRatio) { worstRatio = err / bound[i]; worst = i; }
            se += err * err;
            sx += (double)x[i] * x[i];
        }
        TestContext.Out.WriteLine($"worst error / bound = {worstRatio:F3}, nmse = {se / sx:E2}");
        Assert.That(worstRatio, Is.LessThanOrEqualTo(1.0), $"element {worst}: x = {x[Math.Max(worst, 0)]}, got {y[Math.Max(worst, 0)]}, bound {bound[Math.Max(worst, 0)]}");
        // Normalized error of a uniform quantizer with 2^b levels over about ±3 sigma is near (6/2^b)^2/12 (Q4: 1.2e-2);
        // a broken layout (swapped nibbles, wrong scale) gives about 1 or more.
        double maxNmse = type switch { GgmlType.Q4_0 => 2e-2, GgmlType.Q4_K => 1.5e-2, GgmlType.Q5_0 => 5e-3, GgmlType.Q6_K => 1e-3, GgmlType.Q8_0 => 1e-4, _ => 1e-4 };
        Assert.That(se / sx, Is.LessThan(maxNmse), "normalized squared error");
    }

    [TestCase(GgmlType.Q8_0)]
    [TestCase(GgmlType.Q4_0)]
    [TestCase(GgmlType.Q5_0)]
    [TestCase(GgmlType.Q4_K)]
    [TestCase(GgmlType.Q6_K)]
    public void ZerosQuantizeToZeros(GgmlType type)
    {
        var (q, y) = RoundTrip(type, new float[256]);
        Assert.That(y, Is.All.EqualTo(0f));
        if (type == GgmlType.Q4_0) // d = 0 / -8 (stored as -0, as in C), every nibble 8 (the zero level)
            for (int blk = 0; blk < 8; blk++) Assert.That(q.Skip(blk * 18 + 2).Take(16), Is.All.EqualTo((byte)0x88));
    }

    [Test]
    public void RejectsWrongSizesAndUnsupportedTypes()
    {
        Assert.Throws<ArgumentException>(() => WeightQuantizer.QuantizeRow(GgmlType.Q8_0, new float[32], new byte[33]));
        Assert.Throws<ArgumentException>(() => WeightQuantizer.QuantizeRow(GgmlType.Q4_K, new float[32], new byte[144]));
        Assert.Throws<NotSupportedException>(() => WeightQuantizer.QuantizeRow(GgmlType.Q2_K, new float[256], new byte[84]));
    }

    /// <summary>Every tensor of a supported type in a llama.cpp-quantized file equals our quantization of the same tensor
    /// in the F32 file it was made from (llama-quantize without an importance matrix calls the _ref functions).</summary>
    [TestCase("tinystories-656k-q8_0.gguf", "tinystories-656k-f32.gguf", 8)]
    [TestCase("tinystories-656k-q4_0.gguf", "tinystories-656k-f32.gguf", 8)]
    [TestCase("tinystories-656k-q4_k_m.gguf", "tinystories-656k-f32.gguf", 8)]
    [TestCase("rand-llama-d256-q8_0.gguf", "rand-llama-d256-f32.gguf", 16)]
    [TestCase("rand-llama-d256-q4_0.gguf", "rand-llama-d256-f32.gguf", 16)]
    [TestCase("rand-llama-d256-q4_k_m.gguf", "rand-llama-d256-f32.gguf", 16)]
    [TestCase("rand-llama-d256-q6_k.gguf", "rand-llama-d256-f32.gguf", 16)]
    [TestCase("rand-llama-d256-f16.gguf", "rand-llama-d256-f32.gguf", 16)]
    [TestCase("rand-llama-d256-bf16.gguf", "rand-llama-d256-f32.gguf", 16)]
    public unsafe void MatchesLlamaCppQuantizedFilesByteForByte(string file, string f32File, int minTensors)
    {
        using var g = GgufFile.Open(SharedData.Model(file));
        using var f = GgufFile.Open(SharedData.Model(f32File));
        int compared = 0;
        var types = new HashSet<GgmlType>();
        // Layers 1 and 3 are left out to keep the suite fast (the K-quant search is slow without JIT optimization);
        // layers 0 and 2 still cover both Q4_K and Q6_K attn_v / ffn_down in the Q4_K_M file.
        foreach (var t in g.Tensors.Where(t => t.Type != GgmlType.F32 && WeightQuantizer.Supports(t.Type) &&
                                               !t.Name.StartsWith("blk.1.", StringComparison.Ordinal) && !t.Name.StartsWith("blk.3.", StringComparison.Ordinal)))
        {
            var src = f.GetTensor(t.Name);
            Assert.That(src.Type, Is.EqualTo(GgmlType.F32), t.Name);
            var mine = new byte[t.ByteSize];
            fixed (byte* p = mine)
                WeightQuantizer.Quantize(t.Type, (float*)src.Data, p, src.ElementCount);
            ReadOnlySpan<byte> theirs = t.Span;
            int first = mine.AsSpan().CommonPrefixLength(theirs);
            if (first < mine.Length)
            {
                int bb = GgmlTypeInfo.BlockBytes(t.Type);
                Assert.Fail($"{t.Name} ({t.Type}): first difference at byte {first} (block {first / bb}, offset {first % bb}): ours {mine[first]:x2}, llama.cpp {theirs[first]:x2}");
            }
            compared++;
            types.Add(t.Type);
        }
        Assert.That(compared, Is.GreaterThanOrEqualTo(minTensors), $"tensors compared (types {string.Join(", ", types)})");
    }
}
