using System.Buffers.Binary;
using NUnit.Framework;
using Tessera.Quantization;

namespace Tessera.Tests.Quantization;

/// <summary>Q8_0 / Q8_1 / Q8_K activation blocks checked against values worked out by hand from llama.cpp's reference formulas
/// (Q8_0 and Q8_1 as llama.cpp's x86 path <c>quantize_row_q8_0</c>/<c>_q8_1</c>, which produced the golden outputs:
/// d = amax/127, q = round-to-nearest-even(x * (127/amax)); <c>quantize_row_q8_K_ref</c>: <c>quantize_row_q8_K_ref</c>: iscale = -127/max
/// with max the signed value of largest magnitude, q = nearest_int (ties to even), d = 1/iscale).</summary>
[TestFixture]
public class ActivationQuantizerTests
{
    // q = round(j * 127/31) for j = 0..31, worked out by hand (no value lies within 0.03 of a tie).
    private static readonly sbyte[] Ramp =
        [0, 4, 8, 12, 16, 20, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 66, 70, 74, 78, 82, 86, 90, 94, 98, 102, 107, 111, 115, 119, 123, 127];

    /// <summary>Three blocks: (1) amax 127 held by a negative value, so d = 1 and q = round(x) with .5 ties going to even;
    /// (2) all zeros; (3) x = -j/4, amax 7.75 (negative), d = 7.75/127.</summary>
    private static float[] Input()
    {
        var x = new float[96];
        x[0] = -127f;
        x[1] = -2.5f;
        for (int j = 2; j < 32; j++) x[j] = j + 0.5f;
        for (int j = 0; j < 32; j++) x[64 + j] = -j / 4f;
        return x;
    }

    private static sbyte[] ExpectedQs(int block)
    {
        var q = new sbyte[32];
        if (block == 0)
        {
            q[0] = -127;
            q[1] = -2;                                         // -2.5 ties to even: -2
            for (int j = 2; j < 32; j++) q[j] = (sbyte)(j % 2 == 0 ? j : j + 1); // j + 0.5 ties to the even neighbour
        }
        else if (block == 2)
        {
            for (int j = 0; j < 32; j++) q[j] = (sbyte)-Ramp[j];
        }
        return q;
    }

    // f16 bits of d, by hand: 1.0 -> 0x3C00; 0 -> 0; 7.75/127 = 0.0610236 = 1.95276 * 2^-5 -> exponent 10, mantissa round(0.95276*1024) = 976 -> 0x2BD0.
    private static readonly ushort[] ExpectedD = [0x3C00, 0x0000, 0x2BD0];

    [Test]
    public void Q8_0_MatchesHandComputedBlocks()
    {
        var dst = new byte[3 * 34];
        ActivationQuantizer.QuantizeRow(GgmlType.Q8_0, Input(), dst);
        for (int b = 0; b < 3; b++)
        {
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(dst.AsSpan(b * 34)), Is.EqualTo(ExpectedD[b]), $"d of block {b}");
            Assert.That(dst.AsSpan(b * 34 + 2, 32).ToArray().Select(v => (sbyte)v), Is.EqualTo(ExpectedQs(b)), $"qs of block {b}");
        }
    }

    [Test]
    public void Q8_1_MatchesHandComputedBlocks()
    {
        // s = f16(d * sum(q)): block 0 sum = -127 - 2 + (2+4+4+6+6+...+30+32) = -129 + 495 + 15 = 381, d = 1
        // -> 381 = 1.48828 * 2^8, mantissa 500 -> 0x5DF4;
        // block 2 sum = -2032 = -16 * 127, so s = -16 * 7.75 = -124 -> 1.9375 * 2^6 -> 0xD7C0.
        ushort[] expectedS = [0x5DF4, 0x0000, 0xD7C0];
        var dst = new byte[3 * 36];
        ActivationQuantizer.QuantizeRow(GgmlType.Q8_1, Input(), dst);
        for (int b = 0; b < 3; b++)
        {
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(dst.AsSpan(b * 36)), Is.EqualTo(ExpectedD[b]), $"d of block {b}");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(dst.AsSpan(b * 36 + 2)), Is.EqualTo(expectedS[b]), $"s of block {b}");
            Assert.That(dst.AsSpan(b * 36 + 4, 32).ToArray().Select(v => (sbyte)v), Is.EqualTo(ExpectedQs(b)), $"qs of block {b}");
        }
    }

    [Test]
    public void Q8_K_MatchesHandComputedBlocks()
    {
        var x = new float[4 * 256];
        // Block 0: max +127 -> iscale = -1, d = -1, q = nearest_int(-x): -0.5 ties to even -> 0.
        x[0] = 127f;
        for (int j = 1; j < 256; j++) x[j] = 0.5f;
        // Block 1: max -127 -> iscale = 1, d = 1; 2.5 -> 2 and 1.5 -> 2 (ties to even; roundf would give 3 for 2.5).
        x[256] = -127f;
        for (int j = 1; j < 256; j++) x[256 + j] = j % 2 == 1 ? 2.5f : 1.5f;
        // Block 2: all zero. Block 3: +100 comes first, so max = +100 and -100 maps to +127.
        x[768] = 100f;
        x[769] = -100f;

        var dst = new byte[4 * 292];
        ActivationQuantizer.QuantizeRow(GgmlType.Q8_K, x, dst);

        float D(int b) => BinaryPrimitives.ReadSingleLittleEndian(dst.AsSpan(b * 292));
        sbyte Q(int b, int j) => (sbyte)dst[b * 292 + 4 + j];
        short S(int b, int j) => BinaryPrimitives.ReadInt16LittleEndian(dst.AsSpan(b * 292 + 260 + 2 * j));

        Assert.That(D(0), Is.EqualTo(-1f));
        Assert.That(Q(0, 0), Is.EqualTo(-127));
        for (int j = 1; j < 256; j++) Assert.That(Q(0, j), Is.EqualTo(0), $"block 0 q[{j}]");
        Assert.That(S(0, 0), Is.EqualTo(-127));
        for (int j = 1; j < 16; j++) Assert.That(S(0, j), Is.EqualTo(0));

        Assert.That(D(1), Is.EqualTo(1f));
        Assert.That(Q(1, 0), Is.EqualTo(-127));
        for (int j = 1; j < 256; j++) Assert.That(Q(1, j), Is.EqualTo(2), $"block 1 q[{j}]");
        Assert.That(S(1, 0), Is.EqualTo(-127 + 15 * 2));
        for (int j = 1; j < 16; j++) Assert.That(S(1, j), Is.EqualTo(32));

        Assert.That(D(2), Is.EqualTo(0f));
        for (int j = 0; j < 256; j++) Assert.That(Q(2, j), Is.EqualTo(0));
        for (int j = 0; j < 16; j++) Assert.That(S(2, j), Is.EqualTo(0));

        Assert.That(D(3), Is.EqualTo(1f / (-127f / 100f)));
        Assert.That(Q(3, 0), Is.EqualTo(-127));
        Assert.That(Q(3, 1), Is.EqualTo(127));
        for (int j = 2; j < 256; j++) Assert.That(Q(3, j), Is.EqualTo(0));
        Assert.That(S(3, 0), Is.EqualTo(0));
    }

    /// <summary>Random rows (with exact ties planted) against the reference formulas written out here element by
    /// element, so the vectorized quantizers must reproduce llama.cpp's scalar arithmetic byte for byte.</summary>
    [TestCase(1)] [TestCase(2)] [TestCase(3)]
    public void Q8_0_And_Q8_K_MatchScalarFormulasOnRandomRows(int seed)
    {
        var rng = new Random(seed);
        var x = new float[4 * 256];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-3, 3)));
        // Ties: a block whose largest magnitude is 127 (scale 1) holding k + 0.5 values, in both types' block sizes.
        x[300] = -127f;
        for (int j = 301; j < 320; j++) x[j] = (j % 7) - 3.5f;

        var q80 = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q8_0, x.Length)];
        ActivationQuantizer.QuantizeRow(GgmlType.Q8_0, x, q80);
        for (int b = 0; b < x.Length / 32; b++)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[b * 32 + j]));
            float id = amax != 0 ? 127f / amax : 0f;
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(q80.AsSpan(b * 34)), Is.EqualTo(Fp16.FromSingle(amax / 127)), $"Q8_0 d of block {b}");
            for (int j = 0; j < 32; j++)
                Assert.That((sbyte)q80[b * 34 + 2 + j], Is.EqualTo((sbyte)MathF.Round(x[b * 32 + j] * id, MidpointRounding.ToEven)), $"Q8_0 block {b} q[{j}]");
        }

        var q8k = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q8_K, x.Length)];
        ActivationQuantizer.QuantizeRow(GgmlType.Q8_K, x, q8k);
        for (int b = 0; b < x.Length / 256; b++)
        {
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++)
                if (MathF.Abs(x[b * 256 + j]) > amax) { amax = MathF.Abs(x[b * 256 + j]); max = x[b * 256 + j]; }
            float iscale = -127f / max;
            Assert.That(BinaryPrimitives.ReadSingleLittleEndian(q8k.AsSpan(b * 292)), Is.EqualTo(1 / iscale), $"Q8_K d of block {b}");
            for (int g = 0; g < 16; g++)
            {
                int sum = 0;
                for (int j = g * 16; j < g * 16 + 16; j++)
                {
                    float v = iscale * x[b * 256 + j];
                    int q = Math.Min(127, (int)Math.Round(v, MidpointRounding.ToEven));
                    sum += q;
                    Assert.That((sbyte)q8k[b * 292 + 4 + j], Is.EqualTo((sbyte)q), $"Q8_K block {b} q[{j}]");
                }
                Assert.That(BinaryPrimitives.ReadInt16LittleEndian(q8k.AsSpan(b * 292 + 260 + 2 * g)), Is.EqualTo((short)sum), $"Q8_K block {b} bsum {g}");
            }
        }
    }

    /// <summary>When +m and -m both hold the largest magnitude, ggml's scan keeps the first, and d's sign follows it.</summary>
    [TestCase(5, 200)] [TestCase(200, 5)] [TestCase(7, 8)] [TestCase(255, 254)] [TestCase(0, 255)]
    public void Q8_K_TakesTheSignOfTheFirstValueOfLargestMagnitude(int negative, int positive)
    {
        var x = new float[256];
        for (int i = 0; i < x.Length; i++) x[i] = 0.01f * ((i % 13) - 6);
        x[negative] = -2.5f;
        x[positive] = 2.5f;
        var q8k = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q8_K, x.Length)];
        ActivationQuantizer.QuantizeRow(GgmlType.Q8_K, x, q8k);
        // max is the one that comes first; iscale = -127 / max and d = 1 / iscale, so d < 0 when max is positive.
        float max = x[Math.Min(negative, positive)];
        Assert.That(BinaryPrimitives.ReadSingleLittleEndian(q8k), Is.EqualTo(1 / (-127f / max)));
        // The value of largest magnitude maps to -127 whatever its sign; the other one to +127.
        Assert.That((sbyte)q8k[4 + Math.Min(negative, positive)], Is.EqualTo(-127));
        Assert.That((sbyte)q8k[4 + Math.Max(negative, positive)], Is.EqualTo(127));
    }

    [Test]
    public void FloatTypes_ConvertWithRoundToNearestEven()
    {
        float[] x = [1.00048828125f, 1.00146484375f, -3.5f, BitConverter.UInt32BitsToSingle(0x3F818000)];
        var f32 = new byte[16];
        ActivationQuantizer.QuantizeRow(GgmlType.F32, x, f32);
        Assert.That(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(f32).ToArray(), Is.EqualTo(x));

        var f16 = new byte[8];
        ActivationQuantizer.QuantizeRow(GgmlType.F16, x, f16);
        Assert.That(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(f16).ToArray(),
            Is.EqualTo(new ushort[] { 0x3C00, 0x3C02, 0xC300, Fp16.FromSingle(x[3]) }));

        var bf16 = new byte[8];
        ActivationQuantizer.QuantizeRow(GgmlType.BF16, x, bf16);
        Assert.That(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bf16).ToArray(),
            Is.EqualTo(new ushort[] { 0x3F80, 0x3F80, 0xC060, 0x3F82 }));
    }

    [Test]
    public void NonActivationType_Throws()
    {
        var ex = Assert.Throws<NotSupportedException>(() => ActivationQuantizer.QuantizeRow(GgmlType.Q4_K, new float[256], new byte[144]));
        Assert.That(ex!.Message, Does.Contain("Q4_K"));
    }
}
