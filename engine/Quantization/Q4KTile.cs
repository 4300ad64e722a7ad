using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
    // Native memory, so that vpermw takes them as memory operands without bounds checks.
    private static readonly Vector512<short>* ScaleIndex = BuildScaleIndex();
    private static readonly Vector512<short> MinIndex = Vector512.Create(
        (short)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);

    private static Vector512<short>* BuildScaleIndex()
    {
        var idx = (Vector512<short>*)NativeMemory.AlignedAlloc(8 * 64, 64); // lives as long as the process
        for (int s = 0; s < 8; s++)
        {
            short* lanes = (short*)(idx + s);
            for (int l = 0; l < 32; l++) lanes[l] = (short)(l < 16 ? s : 8 + s);
        }
        return idx;
    }

    /// <summary><c>y[k * yStride + j]</c> = dot(weight row <c>w + j * rowBytes</c>, activation row k) for j &lt; 4 and
    /// k &lt; <paramref name="acts"/> (1 or 2), activation rows <paramref name="actBytes"/> apart, <paramref name="nb"/>
    /// super-blocks per row.</summary>
    public static void Multiply(byte* w, long rowBytes, byte* a, long actBytes, int acts, int nb, float* y, long yStride)
    {
        if (acts > 1) Run<TwoActs>(w, rowBytes, a, a + actBytes, nb, y, yStride);
        else Run<OneAct>(w, rowBytes, a, a, nb, y, yStride);
    }

    // Not inlined into Multiply: the JIT's inlining budget is per method (see Q6KTile.Run).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Run<TActs>(byte* w, long rowBytes, byte* a0, byte* a1, int nb, float* y, long yStride)
        where TActs : struct, IActCount
    {
        Vector512<float> acc00 = Vector512<float>.Zero, acc01 = acc00, acc10 = acc00, acc11 = acc00; // [act][row pair]
        Vector128<float> mins0 = Vector128<float>.Zero, mins1 = mins0;                                  // [act], lane = row
        Vector512<byte> mask = Vector512.Create((byte)0x0F);
        for (int i = 0; i < nb; i++)
        {
            byte* x0 = w + (long)i * Q4_K.BlockBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
            // Four rows are four streams from memory: keep misses in flight (see DecodePrefetch).
            DecodePrefetch.Rows4(x0, x1, x2, x3, DecodePrefetch.TileOffset(i, nb, rowBytes, Q4_K.BlockBytes), Q4_K.BlockBytes);
            var hd = Header.Load(x0, x1, x2, x3);

            byte* y0 = a0 + (long)i * Q8_K.BlockBytes, y1 = a1 + (long)i * Q8_K.BlockBytes;
            Vector512<int> i00 = Vector512<int>.Zero, i01 = i00, i10 = i00, i11 = i00;
            for (int j = 0; j < 4; j++)
            {
                // The scale index comes from memory (vpermw's memory operand), so the four steps are one loop body.
                Vector512<short> scLoA = Avx512BW.PermuteVar32x16(hd.ScalesA, ScaleIndex[2 * j]);
                Vector512<short> scHiA = Avx512BW.PermuteVar32x16(hd.ScalesA, ScaleIndex[2 * j + 1]);
                Vector512<short> scLoB = Avx512BW.PermuteVar32x16(hd.ScalesB, ScaleIndex[2 * j]);
                Vector512<short> scHiB = Avx512BW.PermuteVar32x16(hd.ScalesB, ScaleIndex[2 * j + 1]);
                Vector512<byte> qA = Vector512.Create(Vector256.Load(x0 + 16 + 32 * j), Vector256.Load(x1 + 16 + 32 * j));
                Vector512<byte> qB = Vector512.Create(Vector256.Load(x2 + 16 + 32 * j), Vector256.Load(x3 + 16 + 32 * j));
                Vector512<byte> loA = qA & mask, hiA = Vector512.ShiftRightLogical(qA.AsUInt16(), 4).AsByte() & mask;
                Vector512<byte> loB = qB & mask, hiB = Vector512.ShiftRightLogical(qB.AsUInt16(), 4).AsByte() & mask;

                Vector512<sbyte> l0 = Broadcast(y0 + Q8_K.QsOffset + 64 * j), h0 = Broadcast(y0 + Q8_K.QsOffset + 64 * j + 32);
                i00 += Products(loA, hiA, l0, h0, scLoA, scHiA);
                i01 += Products(loB, hiB, l0, h0, scLoB, scHiB);
                if (!TActs.Two) continue;
                Vector512<sbyte> l1 = Broadcast(y1 + Q8_K.QsOffset + 64 * j), h1 = Broadcast(y1 + Q8_K.QsOffset + 64 * j + 32);
                i10 += Products(loA, hiA, l1, h1, scLoA, scHiA);
                i11 += Products(loB, hiB, l1, h1, scLoB, scHiB);
            }

            float yd = *(float*)y0;
            Vector256<short> bs = Vector256.Load((short*)(y0 + Q8_K.BsumsOffset));
            Vector512<short> bs2 = Vector512.Create(bs, bs);
            Vector512<int> mA = Avx512BW.MultiplyAddAdjacent(bs2, hd.MinsA), mB = Avx512BW.MultiplyAddAdjacent(bs2, hd.MinsB);
            acc00 = Avx512F.FusedMultiplyAdd(hd.DA * yd, Avx512F.ConvertToVector512Single(i00), acc00);
            acc01 = Avx512F.FusedMultiplyAdd(hd.DB * yd, Avx512F.ConvertToVector512Single(i01), acc01);
            mins0 += hd.Dmin * yd * Vector128.ConvertToSingle(RowSums(mA, mB));
            if (!TActs.Two) continue;

            yd = *(float*)y1;
            bs = Vector256.Load((short*)(y1 + Q8_K.BsumsOffset));
            bs2 = Vector512.Create(bs, bs);
            mA = Avx512BW.MultiplyAddAdjacent(bs2, hd.MinsA);
            mB = Avx512BW.MultiplyAddAdjacent(bs2, hd.MinsB);
            acc10 = Avx512F.FusedMultiplyAdd(hd.DA * yd, Avx512F.ConvertToVector512Single(i10), acc10);
            acc11 = Avx512F.FusedMultiplyAdd(hd.DB * yd, Avx512F.ConvertToVector512Single(i11), acc11);
            mins1 += hd.Dmin * yd * Vector128.ConvertToSingle(RowSums(mA, mB));
        }
        (SimdHelpers.HSum4(acc00, acc01) - mins0).Store(y);
        if (TActs.Two) (SimdHelpers.HSum4(acc10, acc11) - mins1).Store(y + yStride);
    }

    /// <summary>32 activations of a Q8_K row in both halves of a register (one per weight row of a pair): one
    /// vbroadcasti64x4 from memory, which runs on a load port, where a load and an insert would take a shuffle-port
    /// slot from the products.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<sbyte> Broadcast(byte* p) => Avx512F.BroadcastVector256ToVector512((long*)p).AsSByte();

    /// <summary>Two sub-blocks of a row pair: Σ scale · (nibble · activation), as Q4_K.DotAvx2 forms it per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Products(Vector512<byte> lo, Vector512<byte> hi, Vector512<sbyte> l, Vector512<sbyte> h,
        Vector512<short> scLo, Vector512<short> scHi)
        => Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(lo, l), scLo)
         + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hi, h), scHi);

    /// <summary>The first 16 bytes of a super-block of four rows (d, dmin and the 12 bytes of packed 6-bit scales and
    /// mins), decoded together: the four rows' headers are transposed so that each 32-bit lane is one row, ggml's
    /// <c>utmp</c> unpacking then runs on the four rows at once, and the halves are widened exactly (no F16C in .NET)
    /// — the same values <see cref="Q4_K.UnpackScales"/> and <see cref="Fp16.Load"/> give row by row.</summary>
    private readonly struct Header
    {
        /// <summary>Scales (as shorts) of rows 0 and 1 (lanes 0..7, 8..15) and 2 and 3, the table vpermw spreads.</summary>
        public readonly Vector512<short> ScalesA, ScalesB;
        /// <summary>Mins spread over the 16 bsums (bsum j pairs with min j / 2), rows 0 and 1, and 2 and 3.</summary>
        public readonly Vector512<short> MinsA, MinsB;
        /// <summary>d of rows 0 and 1 (8 lanes each), and of rows 2 and 3.</summary>
        public readonly Vector512<float> DA, DB;
        /// <summary>dmin of the four rows.</summary>
        public readonly Vector128<float> Dmin;

        private Header(Vector512<short> scalesA, Vector512<short> scalesB, Vector512<short> minsA, Vector512<short> minsB,
            Vector512<float> dA, Vector512<float> dB, Vector128<float> dmin)
        {
            ScalesA = scalesA; ScalesB = scalesB; MinsA = minsA; MinsB = minsB; DA = dA; DB = dB; Dmin = dmin;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Header Load(byte* x0, byte* x1, byte* x2, byte* x3)
        {
            // Rows as [h, u0, u1, u2] (h = d | dmin << 16), transposed to h, u0, u1, u2 of the four rows.
            Vector128<uint> r0 = Vector128.Load((uint*)x0), r1 = Vector128.Load((uint*)x1);
            Vector128<uint> r2 = Vector128.Load((uint*)x2), r3 = Vector128.Load((uint*)x3);
            Vector128<ulong> t0 = Sse2.UnpackLow(r0, r1).AsUInt64(), t1 = Sse2.UnpackHigh(r0, r1).AsUInt64();
            Vector128<ulong> t2 = Sse2.UnpackLow(r2, r3).AsUInt64(), t3 = Sse2.UnpackHigh(r2, r3).AsUInt64();
            Vector128<uint> h = Sse2.UnpackLow(t0, t2).AsUInt32(), u0 = Sse2.UnpackHigh(t0, t2).AsUInt32();
            Vector128<uint> u1 = Sse2.UnpackLow(t1, t3).AsUInt32(), u2 = Sse2.UnpackHigh(t1, t3).AsUInt32();

            // ggml's utmp steps (Q4_K.UnpackScales): scales 0-3, scales 4-7, mins 0-3, mins 4-7 of each row.
            Vector128<uint> k1 = Vector128.Create(0x3f3f3f3fu), k2 = Vector128.Create(0x0f0f0f0fu), k3 = Vector128.Create(0x03030303u);
            Vector128<uint> sLo = u0 & k1;
            Vector128<uint> sHi = (u2 & k2) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(u0, 6) & k3, 4);
            Vector128<uint> mLo = u1 & k1;
            Vector128<uint> mHi = (Vector128.ShiftRightLogical(u2, 4) & k2) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(u1, 6) & k3, 4);
            // Interleaving low and high words gives each row's 8 bytes in order: rows 0, 1 from the low lanes, 2, 3 from the high.
            Vector512<short> scalesA = Avx2.ConvertToVector256Int16(Sse2.UnpackLow(sLo, sHi).AsByte()).ToVector512Unsafe();
            Vector512<short> scalesB = Avx2.ConvertToVector256Int16(Sse2.UnpackHigh(sLo, sHi).AsByte()).ToVector512Unsafe();
            Vector512<short> minsA = Avx512BW.PermuteVar32x16(Avx2.ConvertToVector256Int16(Sse2.UnpackLow(mLo, mHi).AsByte()).ToVector512Unsafe(), MinIndex);
            Vector512<short> minsB = Avx512BW.PermuteVar32x16(Avx2.ConvertToVector256Int16(Sse2.UnpackHigh(mLo, mHi).AsByte()).ToVector512Unsafe(), MinIndex);

            // d of the four rows in lanes 0..3, dmin in 4..7, widened exactly; d spread over the row pairs' halves.
            Vector256<float> dd = F16.ToSingle(Vector256.Create(h & Vector128.Create(0xFFFFu), Vector128.ShiftRightLogical(h, 16)));
            Vector512<float> d16 = dd.ToVector512Unsafe();
            return new Header(scalesA, scalesB, minsA, minsB,
                Avx512F.PermuteVar16x32(d16, Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)),
                Avx512F.PermuteVar16x32(d16, Vector512.Create(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)),
                dd.GetUpper());
        }
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
        Vector512<byte> mask = Vector512.Create((byte)0x0F);
        for (int i = 0; i < nb; i++)
        {
            byte* x0 = w + (long)i * Q4_K.BlockBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
            byte* o = packed + (long)i * PackedBlockBytes;
            var hd = Header.Load(x0, x1, x2, x3);
            for (int j = 0; j < 4; j++)
            {
                Vector512<byte> qA = Vector512.Create(Vector256.Load(x0 + 16 + 32 * j), Vector256.Load(x1 + 16 + 32 * j));
                Vector512<byte> qB = Vector512.Create(Vector256.Load(x2 + 16 + 32 * j), Vector256.Load(x3 + 16 + 32 * j));
                (qA & mask).StoreAligned(o + 256 * j);
                (Vector512.ShiftRightLogical(qA.AsUInt16(), 4).AsByte() & mask).StoreAligned(o + 256 * j + 64);
                (qB & mask).StoreAligned(o + 256 * j + 128);
                (Vector512.ShiftRightLogical(qB.AsUInt16(), 4).AsByte() & mask).StoreAligned(o + 256 * j + 192);
                Avx512BW.PermuteVar32x16(hd.ScalesA, ScaleIndex[2 * j]).StoreAligned((short*)(o + ScalesAt + 256 * j));
                Avx512BW.PermuteVar32x16(hd.ScalesA, ScaleIndex[2 * j + 1]).StoreAligned((short*)(o + ScalesAt + 256 * j + 64));
                Avx512BW.PermuteVar32x16(hd.ScalesB, ScaleIndex[2 * j]).StoreAligned((short*)(o + ScalesAt + 256 * j + 128));
                Avx512BW.PermuteVar32x16(hd.ScalesB, ScaleIndex[2 * j + 1]).StoreAligned((short*)(o + ScalesAt + 256 * j + 192));
            }
            hd.MinsA.StoreAligned((short*)(o + MinsAt));
            hd.MinsB.StoreAligned((short*)(o + MinsAt + 64));
            hd.DA.StoreAligned((float*)(o + DAt));
            hd.DB.StoreAligned((float*)(o + DAt + 64));
            hd.Dmin.StoreAligned((float*)(o + DminAt));
        }
    }

    /// <summary><see cref="Multiply"/> over a tile packed by <see cref="Pack"/>, for all <paramref name="acts"/> activation
    /// rows (two at a time): the same operations on the same values. One call per tile, so that at small widths (three
    /// super-blocks in a 768-wide row) the per-call work does not weigh on the products.</summary>
    public static void MultiplyPacked(byte* packed, byte* a, long actBytes, int acts, int nb, float* y, long yStride)
    {
        for (int b = 0; b < acts; b += 2)
            MultiplyPackedPair(packed, a + b * actBytes, actBytes, Math.Min(2, acts - b), nb, y + b * yStride, yStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyPackedPair(byte* packed, byte* a, long actBytes, int acts, int nb, float* y, long yStride)
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
                Vector512<sbyte> l0 = Broadcast(y0 + Q8_K.QsOffset + 64 * j), h0 = Broadcast(y0 + Q8_K.QsOffset + 64 * j + 32);
                i00 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loA, l0), scLoA)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiA, h0), scHiA);
                i01 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(loB, l0), scLoB)
                     + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hiB, h0), scHiB);
                if (acts < 2) continue;
                Vector512<sbyte> l1 = Broadcast(y1 + Q8_K.QsOffset + 64 * j), h1 = Broadcast(y1 + Q8_K.QsOffset + 64 * j + 32);
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
        (SimdHelpers.HSum4(acc00, acc01) - mins0).Store(y);
        if (acts > 1) (SimdHelpers.HSum4(acc10, acc11) - mins1).Store(y + yStride);
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
