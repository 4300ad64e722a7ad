using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>
/// Q6_K products, register-blocked like <see cref="Q4KTile"/>: four weight rows times one or two Q8_K activation rows,
/// two weight rows per 512-bit register, each lane doing exactly the work of <see cref="Q6_K.DotAvx2"/> (exact integer
/// sums, the same float steps in the same order), so the results equal it bit for bit. The 6-bit values are rebuilt
/// from their low and high bit planes once per weight row for both activation rows.
/// The eight groups of a super-block are written out rather than looped over: the JIT neither unrolls the loop nor
/// folds the group number, and left as a loop it compiled to a jump table per group and ran at 60% of this speed.
/// </summary>
internal static unsafe class Q6KTile
{
    /// <summary>True when the 512-bit tile can run.</summary>
    public static readonly bool Supported = Q4KTile.Supported;

    // vpermw indices into a row pair's 32 scales (row r: lanes 0..15, row r + 1: 16..31): for the g-th group of 32
    // values (g = 4h + k, half h, k-th group of it), scale 8h + 2k for the first 16 products and 8h + 2k + 1 for the
    // next 16, in each row. Native memory so that vpermw takes them as memory operands, without bounds checks.
    private static readonly Vector512<short>* ScaleIndex = BuildScaleIndex();

    // Lanes 0 and 8: where each row's "- 32" correction goes (lane 0 of its half, as Q6_K.DotAvx2 puts it in lane 0).
    private static readonly Vector512<int> LaneZero = Vector512.Create(-1, 0, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0);

    private static Vector512<short>* BuildScaleIndex()
    {
        var idx = (Vector512<short>*)NativeMemory.AlignedAlloc(8 * 64, 64); // lives as long as the process
        for (int g = 0; g < 8; g++)
        {
            short* lanes = (short*)(idx + g);
            int s = 8 * (g / 4) + 2 * (g % 4);
            for (int l = 0; l < 32; l++) lanes[l] = (short)((l < 16 ? 0 : 16) + s + ((l & 15) < 8 ? 0 : 1));
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

    // Not inlined into Multiply: the JIT's inlining budget is per method, and spent on Run it left Half and Group as
    // calls (with the accumulators passed by reference), which halved the speed.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Run<TActs>(byte* w, long rowBytes, byte* a0, byte* a1, int nb, float* y, long yStride)
        where TActs : struct, IActCount
    {
        Vector512<float> acc00 = Vector512<float>.Zero, acc01 = acc00, acc10 = acc00, acc11 = acc00; // [act][row pair]
        for (int i = 0; i < nb; i++)
        {
            byte* x0 = w + (long)i * Q6_K.BlockBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
            byte* y0 = a0 + (long)i * Q8_K.BlockBytes, y1 = a1 + (long)i * Q8_K.BlockBytes;
            // Memory-level parallelism for decode, as in Q4KTile (see DecodePrefetch).
            DecodePrefetch.Rows4(x0, x1, x2, x3, DecodePrefetch.TileOffset(i, nb, rowBytes, Q6_K.BlockBytes), Q6_K.BlockBytes);
            Vector512<short> scA = Avx512BW.ConvertToVector512Int16(Vector256.Create(Vector128.Load((sbyte*)(x0 + 192)), Vector128.Load((sbyte*)(x1 + 192))));
            Vector512<short> scB = Avx512BW.ConvertToVector512Int16(Vector256.Create(Vector128.Load((sbyte*)(x2 + 192)), Vector128.Load((sbyte*)(x3 + 192))));

            Vector512<int> i00 = Vector512<int>.Zero, i01 = i00, i10 = i00, i11 = i00;
            Half<TActs>(0, x0, x1, x2, x3, y0, y1, scA, scB, ref i00, ref i01, ref i10, ref i11);
            Half<TActs>(1, x0, x1, x2, x3, y0, y1, scA, scB, ref i00, ref i01, ref i10, ref i11);

            Vector512<float> dA = Vector512.Create(Vector256.Create(Fp16.Load(x0 + 208)), Vector256.Create(Fp16.Load(x1 + 208)));
            Vector512<float> dB = Vector512.Create(Vector256.Create(Fp16.Load(x2 + 208)), Vector256.Create(Fp16.Load(x3 + 208)));
            acc00 = Scaled(dA, scA, i00, y0, acc00);
            acc01 = Scaled(dB, scB, i01, y0, acc01);
            if (!TActs.Two) continue;
            acc10 = Scaled(dA, scA, i10, y1, acc10);
            acc11 = Scaled(dB, scB, i11, y1, acc11);
        }
        Store(acc00, acc01, y);
        if (TActs.Two) Store(acc10, acc11, y + yStride);
    }

    /// <summary>Half <paramref name="h"/> of a super-block (128 values) of the four rows, its four groups written out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Half<TActs>(int h, byte* x0, byte* x1, byte* x2, byte* x3, byte* y0, byte* y1,
        Vector512<short> scA, Vector512<short> scB,
        ref Vector512<int> i00, ref Vector512<int> i01, ref Vector512<int> i10, ref Vector512<int> i11)
        where TActs : struct, IActCount
    {
        Vector512<byte> m4 = Vector512.Create((byte)0x0F), m30 = Vector512.Create((byte)0x30);
        // Rows (0, 1) in A, (2, 3) in B: 64 low-nibble bytes and 32 high-bit bytes per row for this half.
        Vector512<byte> l0A = Pair(x0 + 64 * h, x1 + 64 * h), l1A = Pair(x0 + 64 * h + 32, x1 + 64 * h + 32);
        Vector512<byte> qhA = Pair(x0 + 128 + 32 * h, x1 + 128 + 32 * h);
        Vector512<byte> l0B = Pair(x2 + 64 * h, x3 + 64 * h), l1B = Pair(x2 + 64 * h + 32, x3 + 64 * h + 32);
        Vector512<byte> qhB = Pair(x2 + 128 + 32 * h, x3 + 128 + 32 * h);
        Vector512<short>* idx = ScaleIndex + 4 * h;
        byte* q0 = y0 + Q8_K.QsOffset + 128 * h, q1 = y1 + Q8_K.QsOffset + 128 * h;

        // Group 0: low nibbles of l0, bits 0-1 of qh.
        Group<TActs>((l0A & m4) | (Vector512.ShiftLeft(qhA.AsUInt16(), 4).AsByte() & m30),
                     (l0B & m4) | (Vector512.ShiftLeft(qhB.AsUInt16(), 4).AsByte() & m30),
                     scA, scB, idx[0], q0, q1, ref i00, ref i01, ref i10, ref i11);
        // Group 1: low nibbles of l1, bits 2-3 of qh.
        Group<TActs>((l1A & m4) | (Vector512.ShiftLeft(qhA.AsUInt16(), 2).AsByte() & m30),
                     (l1B & m4) | (Vector512.ShiftLeft(qhB.AsUInt16(), 2).AsByte() & m30),
                     scA, scB, idx[1], q0 + 32, q1 + 32, ref i00, ref i01, ref i10, ref i11);
        // Group 2: high nibbles of l0, bits 4-5 of qh.
        Group<TActs>((Vector512.ShiftRightLogical(l0A.AsUInt16(), 4).AsByte() & m4) | (qhA & m30),
                     (Vector512.ShiftRightLogical(l0B.AsUInt16(), 4).AsByte() & m4) | (qhB & m30),
                     scA, scB, idx[2], q0 + 64, q1 + 64, ref i00, ref i01, ref i10, ref i11);
        // Group 3: high nibbles of l1, bits 6-7 of qh.
        Group<TActs>((Vector512.ShiftRightLogical(l1A.AsUInt16(), 4).AsByte() & m4) | (Vector512.ShiftRightLogical(qhA.AsUInt16(), 2).AsByte() & m30),
                     (Vector512.ShiftRightLogical(l1B.AsUInt16(), 4).AsByte() & m4) | (Vector512.ShiftRightLogical(qhB.AsUInt16(), 2).AsByte() & m30),
                     scA, scB, idx[3], q0 + 96, q1 + 96, ref i00, ref i01, ref i10, ref i11);
    }

    /// <summary>32 values (0..63) of each of the four rows times 32 activations of each activation row, scaled.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Group<TActs>(Vector512<byte> qA, Vector512<byte> qB, Vector512<short> scA, Vector512<short> scB,
        Vector512<short> index, byte* q0, byte* q1,
        ref Vector512<int> i00, ref Vector512<int> i01, ref Vector512<int> i10, ref Vector512<int> i11)
        where TActs : struct, IActCount
    {
        Vector512<short> sA = Avx512BW.PermuteVar32x16(scA, index), sB = Avx512BW.PermuteVar32x16(scB, index);
        Vector256<sbyte> v = Vector256.Load((sbyte*)q0);
        Vector512<sbyte> v0 = Vector512.Create(v, v);
        i00 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qA, v0), sA);
        i01 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qB, v0), sB);
        if (!TActs.Two) return;
        v = Vector256.Load((sbyte*)q1);
        Vector512<sbyte> v1 = Vector512.Create(v, v);
        i10 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qA, v1), sA);
        i11 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qB, v1), sB);
    }

    /// <summary>Bytes <see cref="Pack"/> writes per super-block of a 4-row tile (a multiple of 64, for aligned loads).</summary>
    public const int PackedBlockBytes = 2304;

    // Layout of one packed super-block: group g (0..7) at 256 g as [qA, qB, sA, sB] (the rebuilt 6-bit values of row
    // pairs A = (0, 1) and B = (2, 3), and their per-lane scales), the raw scales of A and B (for the "- 32" offsets)
    // at 2048, d of A and B at 2176.
    private const int RawScalesAt = 2048, DAt = 2176;

    /// <summary>Prefill with many activation rows: rebuilds a 4-row tile's 6-bit values from their bit planes, spreads
    /// the scales over the lanes and widens d once into <paramref name="packed"/> (<paramref name="nb"/> x
    /// <see cref="PackedBlockBytes"/>, 64-byte aligned), so that <see cref="MultiplyPacked"/> spends its instructions on
    /// the products. The values are the ones <see cref="Multiply"/> forms in registers, so the results equal it bit for bit.</summary>
    public static void Pack(byte* w, long rowBytes, int nb, byte* packed)
    {
        Vector512<byte> m4 = Vector512.Create((byte)0x0F), m30 = Vector512.Create((byte)0x30);
        for (int i = 0; i < nb; i++)
        {
            byte* x0 = w + (long)i * Q6_K.BlockBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
            byte* o = packed + (long)i * PackedBlockBytes;
            Vector512<short> scA = Avx512BW.ConvertToVector512Int16(Vector256.Create(Vector128.Load((sbyte*)(x0 + 192)), Vector128.Load((sbyte*)(x1 + 192))));
            Vector512<short> scB = Avx512BW.ConvertToVector512Int16(Vector256.Create(Vector128.Load((sbyte*)(x2 + 192)), Vector128.Load((sbyte*)(x3 + 192))));
            for (int h = 0; h < 2; h++)
            {
                Vector512<byte> l0A = Pair(x0 + 64 * h, x1 + 64 * h), l1A = Pair(x0 + 64 * h + 32, x1 + 64 * h + 32);
                Vector512<byte> qhA = Pair(x0 + 128 + 32 * h, x1 + 128 + 32 * h);
                Vector512<byte> l0B = Pair(x2 + 64 * h, x3 + 64 * h), l1B = Pair(x2 + 64 * h + 32, x3 + 64 * h + 32);
                Vector512<byte> qhB = Pair(x2 + 128 + 32 * h, x3 + 128 + 32 * h);
                // The four groups of the half, as Half forms them.
                byte* g = o + 1024 * h;
                StoreGroup(g, (l0A & m4) | (Vector512.ShiftLeft(qhA.AsUInt16(), 4).AsByte() & m30),
                    (l0B & m4) | (Vector512.ShiftLeft(qhB.AsUInt16(), 4).AsByte() & m30), scA, scB, ScaleIndex[4 * h]);
                StoreGroup(g + 256, (l1A & m4) | (Vector512.ShiftLeft(qhA.AsUInt16(), 2).AsByte() & m30),
                    (l1B & m4) | (Vector512.ShiftLeft(qhB.AsUInt16(), 2).AsByte() & m30), scA, scB, ScaleIndex[4 * h + 1]);
                StoreGroup(g + 512, (Vector512.ShiftRightLogical(l0A.AsUInt16(), 4).AsByte() & m4) | (qhA & m30),
                    (Vector512.ShiftRightLogical(l0B.AsUInt16(), 4).AsByte() & m4) | (qhB & m30), scA, scB, ScaleIndex[4 * h + 2]);
                StoreGroup(g + 768, (Vector512.ShiftRightLogical(l1A.AsUInt16(), 4).AsByte() & m4) | (Vector512.ShiftRightLogical(qhA.AsUInt16(), 2).AsByte() & m30),
                    (Vector512.ShiftRightLogical(l1B.AsUInt16(), 4).AsByte() & m4) | (Vector512.ShiftRightLogical(qhB.AsUInt16(), 2).AsByte() & m30),
                    scA, scB, ScaleIndex[4 * h + 3]);
            }
            scA.StoreAligned((short*)(o + RawScalesAt));
            scB.StoreAligned((short*)(o + RawScalesAt + 64));
            Vector512.Create(Vector256.Create(Fp16.Load(x0 + 208)), Vector256.Create(Fp16.Load(x1 + 208))).StoreAligned((float*)(o + DAt));
            Vector512.Create(Vector256.Create(Fp16.Load(x2 + 208)), Vector256.Create(Fp16.Load(x3 + 208))).StoreAligned((float*)(o + DAt + 64));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreGroup(byte* g, Vector512<byte> qA, Vector512<byte> qB, Vector512<short> scA, Vector512<short> scB, Vector512<short> index)
    {
        qA.StoreAligned(g);
        qB.StoreAligned(g + 64);
        Avx512BW.PermuteVar32x16(scA, index).StoreAligned((short*)(g + 128));
        Avx512BW.PermuteVar32x16(scB, index).StoreAligned((short*)(g + 192));
    }

    /// <summary><see cref="Multiply"/> over a tile packed by <see cref="Pack"/>, for all <paramref name="acts"/> activation
    /// rows (two at a time): the same operations on the same values.</summary>
    public static void MultiplyPacked(byte* packed, byte* a, long actBytes, int acts, int nb, float* y, long yStride)
    {
        int b = 0;
        for (; b + 2 <= acts; b += 2) RunPacked<TwoActs>(packed, a + b * actBytes, a + (b + 1) * actBytes, nb, y + b * yStride, yStride);
        if (b < acts) RunPacked<OneAct>(packed, a + b * actBytes, a + b * actBytes, nb, y + b * yStride, yStride);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RunPacked<TActs>(byte* packed, byte* a0, byte* a1, int nb, float* y, long yStride)
        where TActs : struct, IActCount
    {
        Vector512<float> acc00 = Vector512<float>.Zero, acc01 = acc00, acc10 = acc00, acc11 = acc00; // [act][row pair]
        for (int i = 0; i < nb; i++)
        {
            byte* o = packed + (long)i * PackedBlockBytes;
            byte* y0 = a0 + (long)i * Q8_K.BlockBytes, y1 = a1 + (long)i * Q8_K.BlockBytes;
            Vector512<int> i00 = Vector512<int>.Zero, i01 = i00, i10 = i00, i11 = i00;
            for (int g = 0; g < 8; g++)
            {
                byte* p = o + 256 * g;
                Vector512<byte> qA = Vector512.LoadAligned(p), qB = Vector512.LoadAligned(p + 64);
                Vector512<short> sA = Vector512.LoadAligned((short*)(p + 128)), sB = Vector512.LoadAligned((short*)(p + 192));
                Vector256<sbyte> v = Vector256.Load((sbyte*)(y0 + Q8_K.QsOffset + 32 * g));
                Vector512<sbyte> v0 = Vector512.Create(v, v);
                i00 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qA, v0), sA);
                i01 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qB, v0), sB);
                if (!TActs.Two) continue;
                v = Vector256.Load((sbyte*)(y1 + Q8_K.QsOffset + 32 * g));
                Vector512<sbyte> v1 = Vector512.Create(v, v);
                i10 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qA, v1), sA);
                i11 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(qB, v1), sB);
            }
            Vector512<short> scA = Vector512.LoadAligned((short*)(o + RawScalesAt)), scB = Vector512.LoadAligned((short*)(o + RawScalesAt + 64));
            Vector512<float> dA = Vector512.LoadAligned((float*)(o + DAt)), dB = Vector512.LoadAligned((float*)(o + DAt + 64));
            acc00 = Scaled(dA, scA, i00, y0, acc00);
            acc01 = Scaled(dB, scB, i01, y0, acc01);
            if (!TActs.Two) continue;
            acc10 = Scaled(dA, scA, i10, y1, acc10);
            acc11 = Scaled(dB, scB, i11, y1, acc11);
        }
        Store(acc00, acc01, y);
        if (TActs.Two) Store(acc10, acc11, y + yStride);
    }

    /// <summary>The four rows' results of one activation row: each half of a row pair's accumulator, summed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> pairA, Vector512<float> pairB, float* y) => SimdHelpers.HSum4(pairA, pairB).Store(y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Pair(byte* lo, byte* hi) => Vector512.Create(Vector256.Load(lo), Vector256.Load(hi));

    /// <summary>A super-block's integer sums of a row pair, less the "- 32" offsets, times d and the activation scale,
    /// added to the pair's float accumulator (as <see cref="Q6_K.DotAvx2"/> does per row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scaled(Vector512<float> d, Vector512<short> scales, Vector512<int> sums, byte* yb, Vector512<float> acc)
        => Avx512F.FusedMultiplyAdd(d * *(float*)yb, Avx512F.ConvertToVector512Single(sums - Offsets(scales, yb)), acc);

    /// <summary>32 * Σ scale·bsum for each row of the pair, in lane 0 of its half (the "- 32" of every 6-bit value,
    /// folded into one correction as <see cref="Q6_K.DotAvx2"/> does). The 8-int sums of each half are formed in every
    /// lane by three swaps (128-bit, 64-bit, 32-bit), then masked to lane 0: exact integers, so equal to the scalar sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Offsets(Vector512<short> scales, byte* yb)
    {
        Vector256<short> bs = Vector256.Load((short*)(yb + Q8_K.BsumsOffset));
        Vector512<int> m = Avx512BW.MultiplyAddAdjacent(scales, Vector512.Create(bs, bs));
        m += Avx512F.Shuffle4x128(m, m, 0b10_11_00_01);
        m += Avx512F.Shuffle(m, 0b01_00_11_10);
        m += Avx512F.Shuffle(m, 0b10_11_00_01);
        return Vector512.ShiftLeft(m, 5) & LaneZero;
    }
}
