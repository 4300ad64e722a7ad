using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>
/// Q4_K products, register-blocked: four weight rows times one or two Q8_K activation rows per pass over the
/// super-blocks. As in <see cref="Q8Tile"/>, a 512-bit register holds the same super-block of two weight rows (low half
/// row r, high half row r + 1), so each lane does exactly the work of <see cref="Q4_K.DotAvx2"/> and the results equal it
/// bit for bit: the integer sums are exact whatever their order, and the float steps (scale, multiply-add, the
/// minimum's correction, the final sum) are the same operations on the same values in the same order.
/// What the tile saves: nibbles and 6-bit scales are unpacked once per weight row for both activation rows, and every
/// 512-bit instruction serves two rows; this is what makes Q4_K decode memory-bound instead of compute-bound.
/// </summary>
internal static unsafe class Q4KTile
{
    /// <summary>True when the 512-bit tile can run.</summary>
    public static readonly bool Supported = Vector512.IsHardwareAccelerated && Avx512BW.IsSupported && SimdHelpers.Avx2Fma;

    // vpermw indices: sub-block s's scale for both rows (row r's 8 scales are lanes 0..7 of the table, row r+1's 8..15),
    // and the mins spread over the 16 bsums (bsum j pairs with min j / 2).
    private static readonly Vector512<short>[] ScaleIndex = BuildScaleIndex();
    private static readonly Vector512<short> MinIndex = Vector512.Create(
        (short)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);

    private static Vector512<short>[] BuildScaleIndex()
    {
        var idx = new Vector512<short>[8];
        Span<short> lanes = stackalloc short[32];
        for (int s = 0; s < 8; s++)
        {
            for (int l = 0; l < 32; l++) lanes[l] = (short)(l < 16 ? s : 8 + s);
            idx[s] = Vector512.Create((ReadOnlySpan<short>)lanes);
        }
        return idx;
    }

    /// <summary><c>y[k * yStride + j]</c> = dot(weight row <c>w + j * rowBytes</c>, activation row k) for j &lt; 4 and
    /// k &lt; <paramref name="acts"/> (1 or 2), activation rows <paramref name="actBytes"/> apart, <paramref name="nb"/>
    /// super-blocks per row.</summary>
    public static void Multiply(byte* w, long rowBytes, byte* a, long actBytes, int acts, int nb, float* y, long yStride)
    {
        uint* u = stackalloc uint[16]; // unpacked scales and mins of the four rows, 16 bytes each: 8 scales, 8 mins
        Vector512<float> acc00 = Vector512<float>.Zero, acc01 = acc00, acc10 = acc00, acc11 = acc00; // [act][row pair]
        Vector128<float> mins0 = Vector128<float>.Zero, mins1 = mins0;                                  // [act], lane = row
        byte* a1base = acts > 1 ? a + actBytes : a;
        Vector512<short> scaleIdx0 = ScaleIndex[0], scaleIdx1 = ScaleIndex[1], scaleIdx2 = ScaleIndex[2], scaleIdx3 = ScaleIndex[3];
        Vector512<short> scaleIdx4 = ScaleIndex[4], scaleIdx5 = ScaleIndex[5], scaleIdx6 = ScaleIndex[6], scaleIdx7 = ScaleIndex[7];
        for (int i = 0; i < nb; i++)
        {
            byte* x0 = w + (long)i * Q4_K.BlockBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
            // Four rows are four streams from memory; asking for the super-block four ahead keeps more misses in flight
            // than the hardware prefetcher does on its own (decode is limited by memory, not arithmetic: 1B-shape
            // Q4_K_M decode went from 96-104 to 85-91 ms a token). Past a row's end it fetches the next rows, which
            // come next; a prefetch never faults.
            const int Ahead = 4 * Q4_K.BlockBytes;
            Sse.Prefetch0(x0 + Ahead); Sse.Prefetch0(x0 + Ahead + 64); Sse.Prefetch0(x0 + Ahead + 128);
            Sse.Prefetch0(x1 + Ahead); Sse.Prefetch0(x1 + Ahead + 64); Sse.Prefetch0(x1 + Ahead + 128);
            Sse.Prefetch0(x2 + Ahead); Sse.Prefetch0(x2 + Ahead + 64); Sse.Prefetch0(x2 + Ahead + 128);
            Sse.Prefetch0(x3 + Ahead); Sse.Prefetch0(x3 + Ahead + 64); Sse.Prefetch0(x3 + Ahead + 128);
            Q4_K.UnpackScales(x0 + 4, u);
            Q4_K.UnpackScales(x1 + 4, u + 4);
            Q4_K.UnpackScales(x2 + 4, u + 8);
            Q4_K.UnpackScales(x3 + 4, u + 12);
            // Tables for vpermw: scales of rows (0, 1) and (2, 3), and their mins.
            Vector512<short> sA = Avx2.ConvertToVector256Int16(Vector128.Create(*(ulong*)u, *(ulong*)(u + 4)).AsByte()).ToVector512Unsafe();
            Vector512<short> sB = Avx2.ConvertToVector256Int16(Vector128.Create(*(ulong*)(u + 8), *(ulong*)(u + 12)).AsByte()).ToVector512Unsafe();
            Vector512<short> minA = Avx512BW.PermuteVar32x16(
                Avx2.ConvertToVector256Int16(Vector128.Create(*(ulong*)(u + 2), *(ulong*)(u + 6)).AsByte()).ToVector512Unsafe(), MinIndex);
            Vector512<short> minB = Avx512BW.PermuteVar32x16(
                Avx2.ConvertToVector256Int16(Vector128.Create(*(ulong*)(u + 10), *(ulong*)(u + 14)).AsByte()).ToVector512Unsafe(), MinIndex);

            byte* y0 = a + (long)i * Q8_K.BlockBytes, y1 = a1base + (long)i * Q8_K.BlockBytes;
            Vector512<int> i00 = Vector512<int>.Zero, i01 = i00, i10 = i00, i11 = i00;
            for (int j = 0; j < 4; j++)
            {
                Vector512<short> scLoA, scHiA, scLoB, scHiB;
                switch (j)
                {
                    case 0: scLoA = Avx512BW.PermuteVar32x16(sA, scaleIdx0); scHiA = Avx512BW.PermuteVar32x16(sA, scaleIdx1);
                            scLoB = Avx512BW.PermuteVar32x16(sB, scaleIdx0); scHiB = Avx512BW.PermuteVar32x16(sB, scaleIdx1); break;
                    case 1: scLoA = Avx512BW.PermuteVar32x16(sA, scaleIdx2); scHiA = Avx512BW.PermuteVar32x16(sA, scaleIdx3);
                            scLoB = Avx512BW.PermuteVar32x16(sB, scaleIdx2); scHiB = Avx512BW.PermuteVar32x16(sB, scaleIdx3); break;
                    case 2: scLoA = Avx512BW.PermuteVar32x16(sA, scaleIdx4); scHiA = Avx512BW.PermuteVar32x16(sA, scaleIdx5);
                            scLoB = Avx512BW.PermuteVar32x16(sB, scaleIdx4); scHiB = Avx512BW.PermuteVar32x16(sB, scaleIdx5); break;
                    default: scLoA = Avx512BW.PermuteVar32x16(sA, scaleIdx6); scHiA = Avx512BW.PermuteVar32x16(sA, scaleIdx7);
                            scLoB = Avx512BW.PermuteVar32x16(sB, scaleIdx6); scHiB = Avx512BW.PermuteVar32x16(sB, scaleIdx7); break;
                }
                Vector512<byte> qA = Vector512.Create(Vector256.Load(x0 + 16 + 32 * j), Vector256.Load(x1 + 16 + 32 * j));
                Vector512<byte> qB = Vector512.Create(Vector256.Load(x2 + 16 + 32 * j), Vector256.Load(x3 + 16 + 32 * j));
                Vector512<byte> mask = Vector512.Create((byte)0x0F);
                Vector512<byte> loA = qA & mask, hiA = Vector512.ShiftRightLogical(qA.AsUInt16(), 4).AsByte() & mask;
                Vector512<byte> loB = qB & mask, hiB = Vector512.ShiftRightLogical(qB.AsUInt16(), 4).AsByte() & mask;

                Vector256<sbyte> ql = Vector256.Load((sbyte*)(y0 + Q8_K.QsOffset + 64 * j));
                Vector256<sbyte> qh = Vector256.Load((sbyte*)(y0 + Q8_K.QsOffset + 64 * j + 32));
                Vector512<sbyte> l0 = Vector512.Create(ql, ql), h0 = Vector512.Create(qh, qh);
                i00 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loA, l0), scLoA)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiA, h0), scHiA);
                i01 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loB, l0), scLoB)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiB, h0), scHiB);
                if (acts < 2) continue;
                ql = Vector256.Load((sbyte*)(y1 + Q8_K.QsOffset + 64 * j));
                qh = Vector256.Load((sbyte*)(y1 + Q8_K.QsOffset + 64 * j + 32));
                Vector512<sbyte> l1 = Vector512.Create(ql, ql), h1 = Vector512.Create(qh, qh);
                i10 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loA, l1), scLoA)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiA, h1), scHiA);
                i11 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loB, l1), scLoB)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiB, h1), scHiB);
            }

            Vector512<float> dA = Vector512.Create(Vector256.Create(Fp16.Load(x0)), Vector256.Create(Fp16.Load(x1)));
            Vector512<float> dB = Vector512.Create(Vector256.Create(Fp16.Load(x2)), Vector256.Create(Fp16.Load(x3)));
            Vector128<float> dmin = Vector128.Create(Fp16.Load(x0 + 2), Fp16.Load(x1 + 2), Fp16.Load(x2 + 2), Fp16.Load(x3 + 2));

            float yd = *(float*)y0;
            Vector256<short> bs = Vector256.Load((short*)(y0 + Q8_K.BsumsOffset));
            Vector512<short> bs2 = Vector512.Create(bs, bs);
            Vector512<int> mA = Avx512BW.MultiplyAddAdjacent(bs2, minA), mB = Avx512BW.MultiplyAddAdjacent(bs2, minB);
            acc00 = Avx512F.FusedMultiplyAdd(dA * yd, Avx512F.ConvertToVector512Single(i00), acc00);
            acc01 = Avx512F.FusedMultiplyAdd(dB * yd, Avx512F.ConvertToVector512Single(i01), acc01);
            mins0 += dmin * yd * Vector128.ConvertToSingle(RowSums(mA, mB));
            if (acts < 2) continue;

            yd = *(float*)y1;
            bs = Vector256.Load((short*)(y1 + Q8_K.BsumsOffset));
            bs2 = Vector512.Create(bs, bs);
            mA = Avx512BW.MultiplyAddAdjacent(bs2, minA);
            mB = Avx512BW.MultiplyAddAdjacent(bs2, minB);
            acc10 = Avx512F.FusedMultiplyAdd(dA * yd, Avx512F.ConvertToVector512Single(i10), acc10);
            acc11 = Avx512F.FusedMultiplyAdd(dB * yd, Avx512F.ConvertToVector512Single(i11), acc11);
            mins1 += dmin * yd * Vector128.ConvertToSingle(RowSums(mA, mB));
        }
        y[0] = SimdHelpers.HSum(acc00.GetLower()) - mins0[0];
        y[1] = SimdHelpers.HSum(acc00.GetUpper()) - mins0[1];
        y[2] = SimdHelpers.HSum(acc01.GetLower()) - mins0[2];
        y[3] = SimdHelpers.HSum(acc01.GetUpper()) - mins0[3];
        if (acts < 2) return;
        y[yStride] = SimdHelpers.HSum(acc10.GetLower()) - mins1[0];
        y[yStride + 1] = SimdHelpers.HSum(acc10.GetUpper()) - mins1[1];
        y[yStride + 2] = SimdHelpers.HSum(acc11.GetLower()) - mins1[2];
        y[yStride + 3] = SimdHelpers.HSum(acc11.GetUpper()) - mins1[3];
    }

    /// <summary>Bytes <see cref="Pack"/> writes per super-block of a 4-row tile (a multiple of 64, for aligned loads).</summary>
    public const int PackedBlockBytes = 2368;

    // Layout of one packed super-block: nibbles [j][loA, hiA, loB, hiB] at 0, scales [j][loA, hiA, loB, hiB] at 1024,
    // mins A, B at 2048, d A, B at 2176, dmin of the 4 rows at 2304.
    private const int ScalesAt = 1024, MinsAt = 2048, DAt = 2176, DminAt = 2304;

    /// <summary>Prefill with many activation rows: unpacks a 4-row tile's nibbles, scales, mins and d once into
    /// <paramref name="packed"/> (<paramref name="nb"/> x <see cref="PackedBlockBytes"/>, 64-byte aligned), so that
    /// <see cref="MultiplyPacked"/> spends its instructions on the products only. The values are the ones
    /// <see cref="Multiply"/> computes in registers, so the results are the same bit for bit.</summary>
    public static void Pack(byte* w, long rowBytes, int nb, byte* packed)
    {
        uint* u = stackalloc uint[16];
        Vector512<byte> mask = Vector512.Create((byte)0x0F);
        for (int i = 0; i < nb; i++)
        {
            byte* x0 = w + (long)i * Q4_K.BlockBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
            byte* o = packed + (long)i * PackedBlockBytes;
            Q4_K.UnpackScales(x0 + 4, u);
            Q4_K.UnpackScales(x1 + 4, u + 4);
            Q4_K.UnpackScales(x2 + 4, u + 8);
            Q4_K.UnpackScales(x3 + 4, u + 12);
            Vector512<short> sA = Avx2.ConvertToVector256Int16(Vector128.Create(*(ulong*)u, *(ulong*)(u + 4)).AsByte()).ToVector512Unsafe();
            Vector512<short> sB = Avx2.ConvertToVector256Int16(Vector128.Create(*(ulong*)(u + 8), *(ulong*)(u + 12)).AsByte()).ToVector512Unsafe();
            for (int j = 0; j < 4; j++)
            {
                Vector512<byte> qA = Vector512.Create(Vector256.Load(x0 + 16 + 32 * j), Vector256.Load(x1 + 16 + 32 * j));
                Vector512<byte> qB = Vector512.Create(Vector256.Load(x2 + 16 + 32 * j), Vector256.Load(x3 + 16 + 32 * j));
                (qA & mask).StoreAligned(o + 256 * j);
                (Vector512.ShiftRightLogical(qA.AsUInt16(), 4).AsByte() & mask).StoreAligned(o + 256 * j + 64);
                (qB & mask).StoreAligned(o + 256 * j + 128);
                (Vector512.ShiftRightLogical(qB.AsUInt16(), 4).AsByte() & mask).StoreAligned(o + 256 * j + 192);
                Avx512BW.PermuteVar32x16(sA, ScaleIndex[2 * j]).StoreAligned((short*)(o + ScalesAt + 256 * j));
                Avx512BW.PermuteVar32x16(sA, ScaleIndex[2 * j + 1]).StoreAligned((short*)(o + ScalesAt + 256 * j + 64));
                Avx512BW.PermuteVar32x16(sB, ScaleIndex[2 * j]).StoreAligned((short*)(o + ScalesAt + 256 * j + 128));
                Avx512BW.PermuteVar32x16(sB, ScaleIndex[2 * j + 1]).StoreAligned((short*)(o + ScalesAt + 256 * j + 192));
            }
            Avx512BW.PermuteVar32x16(Avx2.ConvertToVector256Int16(Vector128.Create(*(ulong*)(u + 2), *(ulong*)(u + 6)).AsByte()).ToVector512Unsafe(), MinIndex)
                .StoreAligned((short*)(o + MinsAt));
            Avx512BW.PermuteVar32x16(Avx2.ConvertToVector256Int16(Vector128.Create(*(ulong*)(u + 10), *(ulong*)(u + 14)).AsByte()).ToVector512Unsafe(), MinIndex)
                .StoreAligned((short*)(o + MinsAt + 64));
            Vector512.Create(Vector256.Create(Fp16.Load(x0)), Vector256.Create(Fp16.Load(x1))).StoreAligned((float*)(o + DAt));
            Vector512.Create(Vector256.Create(Fp16.Load(x2)), Vector256.Create(Fp16.Load(x3))).StoreAligned((float*)(o + DAt + 64));
            Vector128.Create(Fp16.Load(x0 + 2), Fp16.Load(x1 + 2), Fp16.Load(x2 + 2), Fp16.Load(x3 + 2)).StoreAligned((float*)(o + DminAt));
        }
    }

    /// <summary><see cref="Multiply"/> over a tile packed by <see cref="Pack"/>: the same operations on the same values.</summary>
    public static void MultiplyPacked(byte* packed, byte* a, long actBytes, int acts, int nb, float* y, long yStride)
    {
        Vector512<float> acc00 = Vector512<float>.Zero, acc01 = acc00, acc10 = acc00, acc11 = acc00; // [act][row pair]
        Vector128<float> mins0 = Vector128<float>.Zero, mins1 = mins0;                                  // [act], lane = row
        byte* a1base = acts > 1 ? a + actBytes : a;
        for (int i = 0; i < nb; i++)
        {
            byte* o = packed + (long)i * PackedBlockBytes;
            byte* y0 = a + (long)i * Q8_K.BlockBytes, y1 = a1base + (long)i * Q8_K.BlockBytes;
            Vector512<int> i00 = Vector512<int>.Zero, i01 = i00, i10 = i00, i11 = i00;
            for (int j = 0; j < 4; j++)
            {
                byte* q = o + 256 * j;
                short* sc = (short*)(o + ScalesAt + 256 * j);
                Vector512<byte> loA = Vector512.LoadAligned(q), hiA = Vector512.LoadAligned(q + 64);
                Vector512<byte> loB = Vector512.LoadAligned(q + 128), hiB = Vector512.LoadAligned(q + 192);
                Vector512<short> scLoA = Vector512.LoadAligned(sc), scHiA = Vector512.LoadAligned(sc + 32);
                Vector512<short> scLoB = Vector512.LoadAligned(sc + 64), scHiB = Vector512.LoadAligned(sc + 96);
                Vector256<sbyte> ql = Vector256.Load((sbyte*)(y0 + Q8_K.QsOffset + 64 * j));
                Vector256<sbyte> qh = Vector256.Load((sbyte*)(y0 + Q8_K.QsOffset + 64 * j + 32));
                Vector512<sbyte> l0 = Vector512.Create(ql, ql), h0 = Vector512.Create(qh, qh);
                i00 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loA, l0), scLoA)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiA, h0), scHiA);
                i01 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loB, l0), scLoB)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiB, h0), scHiB);
                if (acts < 2) continue;
                ql = Vector256.Load((sbyte*)(y1 + Q8_K.QsOffset + 64 * j));
                qh = Vector256.Load((sbyte*)(y1 + Q8_K.QsOffset + 64 * j + 32));
                Vector512<sbyte> l1 = Vector512.Create(ql, ql), h1 = Vector512.Create(qh, qh);
                i10 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loA, l1), scLoA)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiA, h1), scHiA);
                i11 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loB, l1), scLoB)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiB, h1), scHiB);
            }
            Vector512<short> minA = Vector512.LoadAligned((short*)(o + MinsAt)), minB = Vector512.LoadAligned((short*)(o + MinsAt + 64));
            Vector512<float> dA = Vector512.LoadAligned((float*)(o + DAt)), dB = Vector512.LoadAligned((float*)(o + DAt + 64));
            Vector128<float> dmin = Vector128.LoadAligned((float*)(o + DminAt));

            float yd = *(float*)y0;
            Vector256<short> bs = Vector256.Load((short*)(y0 + Q8_K.BsumsOffset));
            Vector512<short> bs2 = Vector512.Create(bs, bs);
            acc00 = Avx512F.FusedMultiplyAdd(dA * yd, Avx512F.ConvertToVector512Single(i00), acc00);
            acc01 = Avx512F.FusedMultiplyAdd(dB * yd, Avx512F.ConvertToVector512Single(i01), acc01);
            mins0 += dmin * yd * Vector128.ConvertToSingle(RowSums(Avx512BW.MultiplyAddAdjacent(bs2, minA), Avx512BW.MultiplyAddAdjacent(bs2, minB)));
            if (acts < 2) continue;

            yd = *(float*)y1;
            bs = Vector256.Load((short*)(y1 + Q8_K.BsumsOffset));
            bs2 = Vector512.Create(bs, bs);
            acc10 = Avx512F.FusedMultiplyAdd(dA * yd, Avx512F.ConvertToVector512Single(i10), acc10);
            acc11 = Avx512F.FusedMultiplyAdd(dB * yd, Avx512F.ConvertToVector512Single(i11), acc11);
            mins1 += dmin * yd * Vector128.ConvertToSingle(RowSums(Avx512BW.MultiplyAddAdjacent(bs2, minA), Avx512BW.MultiplyAddAdjacent(bs2, minB)));
        }
        y[0] = SimdHelpers.HSum(acc00.GetLower()) - mins0[0];
        y[1] = SimdHelpers.HSum(acc00.GetUpper()) - mins0[1];
        y[2] = SimdHelpers.HSum(acc01.GetLower()) - mins0[2];
        y[3] = SimdHelpers.HSum(acc01.GetUpper()) - mins0[3];
        if (acts < 2) return;
        y[yStride] = SimdHelpers.HSum(acc10.GetLower()) - mins1[0];
        y[yStride + 1] = SimdHelpers.HSum(acc10.GetUpper()) - mins1[1];
        y[yStride + 2] = SimdHelpers.HSum(acc11.GetLower()) - mins1[2];
        y[yStride + 3] = SimdHelpers.HSum(acc11.GetUpper()) - mins1[3];
    }

    /// <summary>The four rows' sums of 8 ints: rows 0 and 1 are the halves of <paramref name="a"/>, rows 2 and 3 those of
    /// <paramref name="b"/>. Integer sums are exact in any order, so one transposing reduction replaces four horizontal
    /// sums; the float steps after it then run on the four rows side by side, each lane as the scalar code would.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> RowSums(Vector512<int> a, Vector512<int> b)
    {
        // 128-bit lanes a = [a0 a1 | a2 a3], b = [b0 b1 | b2 b3]: row sums are a0+a1, a2+a3, b0+b1, b2+b3.
        Vector512<int> even = Avx512F.Shuffle4x128(a, b, 0b10_00_10_00); // [a0 a2 b0 b2]
        Vector512<int> odd = Avx512F.Shuffle4x128(a, b, 0b11_01_11_01);  // [a1 a3 b1 b3]
        Vector512<int> z = even + odd;
        z += Avx512F.Shuffle(z, 0b01_00_11_10);                           // + the other 64-bit half, per 128-bit lane
        z += Avx512F.Shuffle(z, 0b10_11_00_01);                           // + the neighbour: every element holds its lane's sum
        return Avx512F.PermuteVar16x32(z, Vector512.Create(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower().GetLower();
    }
}
