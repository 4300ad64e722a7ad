using NUnit.Framework;
using Tessera.Quantization;

namespace Tessera.Tests.Quantization;

[TestFixture]
public class ConversionTests
{
    [Test]
    public void Fp16_EveryHalf_RoundTripsThroughFloat()
    {
        for (int i = 0; i < 65536; i++)
        {
            float f = Fp16.ToSingle((ushort)i);
            Assert.That(f, Is.EqualTo((float)BitConverter.UInt16BitsToHalf((ushort)i)).Or.NaN);
            if (float.IsNaN(f)) Assert.That(float.IsNaN(Fp16.ToSingle(Fp16.FromSingle(f))), $"0x{i:X4}");
            else Assert.That(Fp16.FromSingle(f), Is.EqualTo((ushort)i), $"0x{i:X4}");
        }
    }

    [Test]
    public void Fp16_VectorWidening_IsExactForEveryHalf()
    {
        // The F16 dot kernel widens halves with integer tricks; check it on every bit pattern (subnormals, infinities, NaNs).
        for (int i = 0; i < 65536; i += 8)
        {
            var h = System.Runtime.Intrinsics.Vector256.Create((uint)i, (uint)i + 1, (uint)i + 2, (uint)i + 3, (uint)i + 4, (uint)i + 5, (uint)i + 6, (uint)i + 7);
            var f = F16.ToSingle(h);
            for (int k = 0; k < 8; k++)
            {
                float want = Fp16.ToSingle((ushort)(i + k));
                if (float.IsNaN(want)) Assert.That(float.IsNaN(f[k]), $"0x{i + k:X4}");
                else Assert.That(BitConverter.SingleToUInt32Bits(f[k]), Is.EqualTo(BitConverter.SingleToUInt32Bits(want)), $"0x{i + k:X4}");
            }
        }
    }

    // Expected bits worked out by hand from the binary16 format (1 sign, 5 exponent bits biased by 15, 10 mantissa bits).
    [TestCase(1.0f, 0x3C00)]
    [TestCase(-2.0f, 0xC000)]
    [TestCase(65504f, 0x7BFF)]                   // largest half
    [TestCase(65520f, 0x7C00)]                   // halfway to 2^16: ties to even -> infinity
    [TestCase(1.00048828125f, 0x3C00)]           // 1 + 2^-11, halfway between 0x3C00 and 0x3C01 -> even 0x3C00
    [TestCase(1.00146484375f, 0x3C02)]           // 1 + 3*2^-11, halfway between 0x3C01 and 0x3C02 -> even 0x3C02
    [TestCase(1f / 16777216f, 0x0001)]              // 2^-24, smallest subnormal
    [TestCase(1f / 33554432f, 0x0000)]              // 2^-25, halfway to 0 -> even 0
    [TestCase(3f / 33554432f, 0x0002)]               // 3*2^-25 -> even 0x0002
    [TestCase(float.PositiveInfinity, 0x7C00)]
    public void Fp16_FromSingle_RoundsToNearestEven(float value, int expected)
        => Assert.That(Fp16.FromSingle(value), Is.EqualTo((ushort)expected));

    [Test]
    public void Fp16_SpanConversions_MatchScalar()
    {
        var rng = new Random(1);
        float[] x = new float[1037];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-30, 20)));
        x[0] = float.NaN; x[1] = float.PositiveInfinity; x[2] = -0.0f; x[3] = 65520f; x[4] = 1.00048828125f;
        var h = new ushort[x.Length];
        Fp16.FromSingle(x, h);
        for (int i = 0; i < x.Length; i++)
        {
            if (float.IsNaN(x[i])) Assert.That(float.IsNaN(Fp16.ToSingle(h[i])));
            else Assert.That(h[i], Is.EqualTo(Fp16.FromSingle(x[i])), $"element {i} = {x[i]}");
        }
        var back = new float[x.Length];
        Fp16.ToSingle(h, back);
        for (int i = 0; i < x.Length; i++) Assert.That(back[i], Is.EqualTo(Fp16.ToSingle(h[i])).Or.NaN);
    }

    // Expected bits by hand: bfloat16 is the top 16 bits of the float, rounded to nearest even on the low 16.
    [TestCase(0x3F800000u, 0x3F80)]   // 1.0
    [TestCase(0x3F808000u, 0x3F80)]   // tie, lower neighbour even -> down
    [TestCase(0x3F818000u, 0x3F82)]   // tie, lower neighbour odd -> up
    [TestCase(0x3F808001u, 0x3F81)]   // above the tie -> up
    [TestCase(0xBF807FFFu, 0xBF80)]   // below the tie -> down (negative)
    [TestCase(0x7F7FFFFFu, 0x7F80)]   // float max rounds to infinity
    [TestCase(0x7F800000u, 0x7F80)]   // infinity
    [TestCase(0x7FC00001u, 0x7FC0)]   // quiet NaN keeps its top bits
    [TestCase(0x7F800001u, 0x7FC0)]   // signalling NaN becomes quiet, not infinity
    [TestCase(0xFF810000u, 0xFFC1)]   // negative NaN with payload: sign and payload top kept, quiet bit set
    [TestCase(0x00018000u, 0x0002)]   // subnormal tie, odd -> up (not flushed)
    [TestCase(0x00008000u, 0x0000)]   // subnormal tie, even -> down
    public void BFloat16_FromSingle_RoundsToNearestEven(uint floatBits, int expected)
        => Assert.That(BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(floatBits)), Is.EqualTo((ushort)expected));

    [Test]
    public void BFloat16_SpanConversions_MatchScalar()
    {
        var rng = new Random(2);
        float[] x = new float[1043];
        for (int i = 0; i < x.Length; i++) x[i] = BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32));
        x[5] = float.NaN; x[6] = BitConverter.UInt32BitsToSingle(0x7F800001); x[7] = BitConverter.UInt32BitsToSingle(0x3F808000);
        var h = new ushort[x.Length];
        BFloat16.FromSingle(x, h);
        for (int i = 0; i < x.Length; i++) Assert.That(h[i], Is.EqualTo(BFloat16.FromSingle(x[i])), $"element {i}");
        var back = new float[x.Length];
        BFloat16.ToSingle(h, back);
        for (int i = 0; i < x.Length; i++)
            Assert.That(BitConverter.SingleToUInt32Bits(back[i]), Is.EqualTo((uint)h[i] << 16));
    }
}
