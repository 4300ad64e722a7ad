using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>
/// Q6_K products, register-blocked like <see cref="Q4KTile"/>: four weight rows times one or two Q8_K activation rows,
/// two weight rows per 512-bit register, each lane doing exactly the work of <see cref="Q6_K.DotAvx2"/> (exact integer
/// sums, the same float steps in the same order), so the results equal it bit for bit. The 6-bit values are rebuilt
/// from their low and high bit planes once per weight row for both activation rows.
/// </summary>
internal static unsafe class Q6KTile
{
    /// <summary>True when the 512-bit tile can run.</summary>
    public static readonly bool Supported = Q4KTile.Supported;

    // vpermw indices into a row pair's 32 scales (row r: lanes 0..15, row r + 1: 16..31): for the k-th group of 32
    // values of half h, scale 8h + 2k for the first 16 products and 8h + 2k + 1 for the next 16, in each row.
    private static readonly Vector512<short>[] ScaleIndex = BuildScaleIndex();

    private static Vector512<short>[] BuildScaleIndex()
    {
        var idx = new Vector512<short>[8];
        Span<short> lanes = stackalloc short[32];
        for (int g = 0; g < 8; g++) // g = 4h + k
        {
            int s = 8 * (g / 4) + 2 * (g % 4);
            for (int l = 0; l < 32; l++) lanes[l] = (short)((l < 16 ? 0 : 16) + s + ((l & 15) < 8 ? 0 : 1));
            idx[g] = Vector512.Create((ReadOnlySpan<short>)lanes);
        }
        return idx;
    }

    /// <summary><c>y[k * yStride + j]</c> = dot(weight row <c>w + j * rowBytes</c>, activation row k) for j &lt; 4 and
    /// k &lt; <paramref name="acts"/> (1 or 2), activation rows <paramref name="actBytes"/> apart, <paramref name="nb"/>
    /// super-blocks per row.</summary>
    public static void Multiply(byte* w, long rowBytes, byte* a, long actBytes, int acts, int nb, float* y, long yStride)
    {
        Vector512<float> acc00 = Vector512<float>.Zero, acc01 = acc00, acc10 = acc00, acc11 = acc00; // [act][row pair]
        byte* a1base = acts > 1 ? a + actBytes : a;
        Vector512<byte> m4 = Vector512.Create((byte)0x0F), m30 = Vector512.Create((byte)0x30);
        for (int i = 0; i < nb; i++)
        {
            byte* x0 = w + (long)i * Q6_K.BlockBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
            byte* y0 = a + (long)i * Q8_K.BlockBytes, y1 = a1base + (long)i * Q8_K.BlockBytes;
            // Memory-level parallelism for decode, as in Q4KTile: four super-blocks ahead on each of the four rows.
            const int Ahead = 4 * Q6_K.BlockBytes;
            for (int p = 0; p < 4 * 64; p += 64)
            {
                Sse.Prefetch0(x0 + Ahead + p); Sse.Prefetch0(x1 + Ahead + p);
                Sse.Prefetch0(x2 + Ahead + p); Sse.Prefetch0(x3 + Ahead + p);
            }
            Vector512<short> scA = Avx512BW.ConvertToVector512Int16(Vector256.Create(Vector128.Load((sbyte*)(x0 + 192)), Vector128.Load((sbyte*)(x1 + 192))));
            Vector512<short> scB = Avx512BW.ConvertToVector512Int16(Vector256.Create(Vector128.Load((sbyte*)(x2 + 192)), Vector128.Load((sbyte*)(x3 + 192))));

            Vector512<int> i00 = Vector512<int>.Zero, i01 = i00, i10 = i00, i11 = i00;
            for (int h = 0; h < 2; h++)
            {
                // Rows (0, 1) in A, (2, 3) in B: 64 low-nibble bytes and 32 high-bit bytes per row for this half.
                Vector512<byte> l0A = Pair(x0 + 64 * h, x1 + 64 * h), l1A = Pair(x0 + 64 * h + 32, x1 + 64 * h + 32);
                Vector512<byte> qhA = Pair(x0 + 128 + 32 * h, x1 + 128 + 32 * h);
                Vector512<byte> l0B = Pair(x2 + 64 * h, x3 + 64 * h), l1B = Pair(x2 + 64 * h + 32, x3 + 64 * h + 32);
                Vector512<byte> qhB = Pair(x2 + 128 + 32 * h, x3 + 128 + 32 * h);
                for (int k = 0; k < 4; k++)
                {
                    Vector512<byte> qA = Values(l0A, l1A, qhA, k, m4, m30), qB = Values(l0B, l1B, qhB, k, m4, m30);
                    Vector512<short> sA = Avx512BW.PermuteVar32x16(scA, ScaleIndex[4 * h + k]);
                    Vector512<short> sB = Avx512BW.PermuteVar32x16(scB, ScaleIndex[4 * h + k]);
                    Vector256<sbyte> q8 = Vector256.Load((sbyte*)(y0 + Q8_K.QsOffset + 128 * h + 32 * k));
                    Vector512<sbyte> v0 = Vector512.Create(q8, q8);
                    i00 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qA, v0), sA);
                    i01 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qB, v0), sB);
                    if (acts < 2) continue;
                    q8 = Vector256.Load((sbyte*)(y1 + Q8_K.QsOffset + 128 * h + 32 * k));
                    Vector512<sbyte> v1 = Vector512.Create(q8, q8);
                    i10 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qA, v1), sA);
                    i11 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qB, v1), sB);
                }
            }

            Vector512<float> dA = Vector512.Create(Vector256.Create(Fp16.Load(x0 + 208)), Vector256.Create(Fp16.Load(x1 + 208)));
            Vector512<float> dB = Vector512.Create(Vector256.Create(Fp16.Load(x2 + 208)), Vector256.Create(Fp16.Load(x3 + 208)));
            acc00 = Avx512F.FusedMultiplyAdd(dA * *(float*)y0, Avx512F.ConvertToVector512Single(i00 - Offsets(scA, y0)), acc00);
            acc01 = Avx512F.FusedMultiplyAdd(dB * *(float*)y0, Avx512F.ConvertToVector512Single(i01 - Offsets(scB, y0)), acc01);
            if (acts < 2) continue;
            acc10 = Avx512F.FusedMultiplyAdd(dA * *(float*)y1, Avx512F.ConvertToVector512Single(i10 - Offsets(scA, y1)), acc10);
            acc11 = Avx512F.FusedMultiplyAdd(dB * *(float*)y1, Avx512F.ConvertToVector512Single(i11 - Offsets(scB, y1)), acc11);
        }
        y[0] = SimdHelpers.HSum(acc00.GetLower());
        y[1] = SimdHelpers.HSum(acc00.GetUpper());
        y[2] = SimdHelpers.HSum(acc01.GetLower());
        y[3] = SimdHelpers.HSum(acc01.GetUpper());
        if (acts < 2) return;
        y[yStride] = SimdHelpers.HSum(acc10.GetLower());
        y[yStride + 1] = SimdHelpers.HSum(acc10.GetUpper());
        y[yStride + 2] = SimdHelpers.HSum(acc11.GetLower());
        y[yStride + 3] = SimdHelpers.HSum(acc11.GetUpper());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Pair(byte* lo, byte* hi) => Vector512.Create(Vector256.Load(lo), Vector256.Load(hi));

    /// <summary>The k-th group of 32 six-bit values (0..63) of both rows, as <see cref="Q6_K.DotAvx2"/> builds q1..q4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Values(Vector512<byte> l0, Vector512<byte> l1, Vector512<byte> qh, int k, Vector512<byte> m4, Vector512<byte> m30)
        => k switch
        {
            0 => (l0 & m4) | (Vector512.ShiftLeft(qh.AsUInt16(), 4).AsByte() & m30),
            1 => (l1 & m4) | (Vector512.ShiftLeft(qh.AsUInt16(), 2).AsByte() & m30),
            2 => (Vector512.ShiftRightLogical(l0.AsUInt16(), 4).AsByte() & m4) | (qh & m30),
            _ => (Vector512.ShiftRightLogical(l1.AsUInt16(), 4).AsByte() & m4) | (Vector512.ShiftRightLogical(qh.AsUInt16(), 2).AsByte() & m30),
        };

    /// <summary>32 * Σ scale·bsum for each row of the pair, in lane 0 of its half (the "- 32" of every 6-bit value,
    /// folded into one correction as <see cref="Q6_K.DotAvx2"/> does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Offsets(Vector512<short> scales, byte* yb)
    {
        Vector256<short> bs = Vector256.Load((short*)(yb + Q8_K.BsumsOffset));
        Vector512<int> m = Avx512BW.MultiplyAddAdjacent(scales, Vector512.Create(bs, bs));
        return Vector512.Create(Vector256.CreateScalar(32 * Vector256.Sum(m.GetLower())), Vector256.CreateScalar(32 * Vector256.Sum(m.GetUpper())));
    }
}
