using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Benchmarks;

/// <summary>Random but valid data: quantized blocks with sane f16 scales (no NaN/Inf/denormal that would change a
/// kernel's speed), floats of realistic scale.</summary>
internal static unsafe class RandomData
{
    public static readonly Random Rng = new(42);

    /// <summary>Offsets of the f16 scale fields (d, and the min where there is one) in one block.</summary>
    private static int[] HalfFields(GgmlType t) => t switch
    {
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 or GgmlType.IQ4_NL => [0],
        GgmlType.Q4_1 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
        GgmlType.Q2_K => [80, 82],
        GgmlType.Q3_K => [108],
        GgmlType.Q6_K => [208],
        _ => [],
    };

    /// <summary><paramref name="rows"/> rows of <paramref name="cols"/> elements of <paramref name="type"/>, in native
    /// memory aligned to 64 bytes (freed with <see cref="NativeMemory.AlignedFree"/>).</summary>
    public static byte* Weights(GgmlType type, int rows, int cols, out long bytes)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        bytes = rowBytes * rows;
        var p = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        var all = new Span<byte>(p, checked((int)bytes));
        switch (type)
        {
            case GgmlType.F32:
                for (long i = 0; i < bytes / 4; i++) ((float*)p)[i] = Normal() * 0.02f;
                return p;
            case GgmlType.F16:
                for (long i = 0; i < bytes / 2; i++) ((ushort*)p)[i] = Fp16.FromSingle(Normal() * 0.02f);
                return p;
            case GgmlType.BF16:
                for (long i = 0; i < bytes / 2; i++) ((ushort*)p)[i] = BFloat16.FromSingle(Normal() * 0.02f);
                return p;
        }
        Rng.NextBytes(all);
        int bb = GgmlTypeInfo.BlockBytes(type);
        for (long blk = 0; blk < bytes / bb; blk++)
        {
            var b = all.Slice((int)(blk * bb), bb);
            if (type == GgmlType.Q8_0)
                for (int j = 2; j < 34; j++) if (b[j] == 0x80) b[j] = 0x81;
            foreach (int off in HalfFields(type))
                BinaryPrimitives.WriteUInt16LittleEndian(b[off..], Fp16.FromSingle((float)(0.001 + 0.002 * Rng.NextDouble())));
        }
        return p;
    }

    public static float[] Floats(int n, float scale = 1f)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = Normal() * scale;
        return x;
    }

    /// <summary>An F32 table whose rows can be copied into backend activations with <c>Embed</c> (the public way in).</summary>
    public static WeightTensor FloatTable(int rows, int cols)
    {
        var p = Weights(GgmlType.F32, rows, cols, out long bytes);
        for (long i = 0; i < bytes / 4; i++) ((float*)p)[i] = Normal();
        return new WeightTensor("table", GgmlType.F32, rows, cols, p, bytes);
    }

    private static float Normal()
    {
        double u1 = 1.0 - Rng.NextDouble(), u2 = Rng.NextDouble();
        return (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}
