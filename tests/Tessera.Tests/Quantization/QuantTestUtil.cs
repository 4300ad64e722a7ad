using System.Buffers.Binary;
using Tessera.Quantization;

namespace Tessera.Tests.Quantization;

/// <summary>Helpers shared by the quantization tests: random but valid blocks, naive references and error bounds.</summary>
internal static class QuantTestUtil
{
    public static readonly GgmlType[] WeightTypes =
    [
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_NL,
    ];

    /// <summary>Offsets of the f16 scale fields (d, and the min where there is one) inside one block.</summary>
    private static int[] HalfFields(GgmlType t) => t switch
    {
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 or GgmlType.IQ4_NL => [0],
        GgmlType.Q4_1 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
        GgmlType.Q2_K => [80, 82],
        GgmlType.Q3_K => [108],
        GgmlType.Q6_K => [208],
        _ => [],
    };

    /// <summary>A row of <paramref name="n"/> elements of <paramref name="type"/>: random quants, random but sane f16 scales
    /// (Q8_0 quants kept in [-127, 127] as the quantizer produces them).</summary>
    public static byte[] RandomRow(GgmlType type, int n, Random rng)
    {
        var bytes = new byte[GgmlTypeInfo.RowBytes(type, n)];
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), (float)(rng.NextDouble() * 2 - 1));
                return bytes;
            case GgmlType.F16:
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), Fp16.FromSingle((float)(rng.NextDouble() * 2 - 1)));
                return bytes;
            case GgmlType.BF16:
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), BFloat16.FromSingle((float)(rng.NextDouble() * 2 - 1)));
                return bytes;
        }
        rng.NextBytes(bytes);
        int bb = GgmlTypeInfo.BlockBytes(type);
        for (int blk = 0; blk < bytes.Length / bb; blk++)
        {
            Span<byte> b = bytes.AsSpan(blk * bb, bb);
            if (type == GgmlType.Q8_0)
                for (int j = 2; j < 34; j++) if (b[j] == 0x80) b[j] = 0x81;
            foreach (int off in HalfFields(type))
                BinaryPrimitives.WriteUInt16LittleEndian(b[off..], Fp16.FromSingle((float)(0.001 + 0.02 * rng.NextDouble())));
        }
        return bytes;
    }

    public static float[] RandomFloats(int n, Random rng, float scale = 1f)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return x;
    }

    public static float[] Dequantize(GgmlType type, ReadOnlySpan<byte> row, int n)
    {
        var y = new float[n];
        Dequantizer.DequantizeRow(type, row, y);
        return y;
    }

    public static byte[] QuantizeActivations(GgmlType weightType, float[] x)
    {
        GgmlType vt = VecDotType.For(weightType);
        var a = new byte[GgmlTypeInfo.RowBytes(vt, x.Length)];
        ActivationQuantizer.QuantizeRow(vt, x, a);
        return a;
    }

    /// <summary>The activation row as the values the integer kernels see (q * d per block; exact widening for float types).</summary>
    public static double[] ActivationValues(GgmlType vt, byte[] a, int n)
    {
        var v = new double[n];
        switch (vt)
        {
            case GgmlType.F32:
                for (int i = 0; i < n; i++) v[i] = BinaryPrimitives.ReadSingleLittleEndian(a.AsSpan(4 * i));
                break;
            case GgmlType.F16:
                for (int i = 0; i < n; i++) v[i] = Fp16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(a.AsSpan(2 * i)));
                break;
            case GgmlType.BF16:
                for (int i = 0; i < n; i++) v[i] = BFloat16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(a.AsSpan(2 * i)));
                break;
            case GgmlType.Q8_0:
            case GgmlType.Q8_1:
                int bb = vt == GgmlType.Q8_0 ? 34 : 36, qo = vt == GgmlType.Q8_0 ? 2 : 4;
                for (int i = 0; i < n; i++)
                {
                    int blk = i / 32;
                    double d = Fp16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(a.AsSpan(blk * bb)));
                    v[i] = d * (sbyte)a[blk * bb + qo + i % 32];
                }
                break;
            case GgmlType.Q8_K:
                for (int i = 0; i < n; i++)
                {
                    int blk = i / 256;
                    double d = BinaryPrimitives.ReadSingleLittleEndian(a.AsSpan(blk * 292));
                    v[i] = d * (sbyte)a[blk * 292 + 4 + i % 256];
                }
                break;
            default: throw new ArgumentException(vt.ToString());
        }
        return v;
    }

    /// <summary>Extra error of Q4_1/Q5_1 · Q8_1 over the exact product of dequantized values: the kernel adds m * s, where
    /// s = f16(d * sum(q)) was rounded once to f16 and d (in the exact product) was rounded separately, so per block at most
    /// |m| * (|s| + |d_f16 * sum(q)|) * 2^-11.</summary>
    public static double Q8_1SumError(GgmlType weightType, byte[] w, byte[] a, int n)
    {
        if (weightType is not (GgmlType.Q4_1 or GgmlType.Q5_1)) return 0;
        int wb = GgmlTypeInfo.BlockBytes(weightType);
        double err = 0;
        for (int blk = 0; blk < n / 32; blk++)
        {
            double m = Fp16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(w.AsSpan(blk * wb + 2)));
            double d = Fp16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(a.AsSpan(blk * 36)));
            double s = Fp16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(a.AsSpan(blk * 36 + 2)));
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += (sbyte)a[blk * 36 + 4 + j];
            err += Math.Abs(m) * (Math.Abs(s) + Math.Abs(d * sum)) * Math.Pow(2, -11);
        }
        return err;
    }

    /// <summary>Bound on float rounding when n products summing to <paramref name="absSum"/> in magnitude are accumulated in float
    /// (recursive summation: (n + 8) units of 2^-24, with room for block-scale products).</summary>
    public static double RoundingBound(int n, double absSum) => (n + 8) * Math.Pow(2, -24) * absSum + 1e-30;

    /// <summary>Bound on |x_i - x̂_i| where x̂ is the activation after conversion to <paramref name="vt"/>, derived from the quantizer formulas:
    /// Q8_0/Q8_1: q = round(x/d), d = amax/127, x̂ = q*f16(d) → d/2 + 127*d*2^-11; Q8_K: d/2 with d = amax/127 (float d);
    /// F16: half an ulp, 2^-11 |x| (normals); BF16: 2^-8 |x|; F32: 0.</summary>
    public static double[] ActivationErrorBound(GgmlType vt, float[] x)
    {
        int n = x.Length;
        var e = new double[n];
        int bs = GgmlTypeInfo.BlockSize(vt);
        for (int blk = 0; blk < n / bs; blk++)
        {
            double amax = 0;
            for (int j = 0; j < bs; j++) amax = Math.Max(amax, Math.Abs(x[blk * bs + j]));
            double d = amax / 127;
            for (int j = 0; j < bs; j++)
            {
                double xi = Math.Abs(x[blk * bs + j]);
                e[blk * bs + j] = vt switch
                {
                    GgmlType.Q8_0 or GgmlType.Q8_1 => d * (0.5 + 127 * Math.Pow(2, -11)) * 1.0001,
                    GgmlType.Q8_K => d * 0.5 * 1.0001,
                    GgmlType.F16 => xi * Math.Pow(2, -11) + Math.Pow(2, -25),
                    GgmlType.BF16 => xi * Math.Pow(2, -8),
                    _ => 0,
                };
            }
        }
        return e;
    }
}
