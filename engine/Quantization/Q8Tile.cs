using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>A weight type whose blocks of 32 turn into 32 signed bytes and one scale, multiplied with Q8_0 activations
/// (Q8_0, Q4_0): what <see cref="Q8Tile"/> needs to know of it.</summary>
internal unsafe interface IQ8BlockWeights
{
    /// <summary>Bytes per block of 32.</summary>
    static abstract int BlockBytes { get; }

    /// <summary>True when the type's single-pair kernel alternates two accumulators (even blocks, odd blocks), as
    /// <see cref="Q8_0.DotAvx2"/> does; false when it has one (<see cref="Q4_0.DotAvx2"/>).</summary>
    static abstract bool TwoAccumulators { get; }

    /// <summary>The block's 32 values as signed bytes in [-127, 127].</summary>
    static abstract Vector256<sbyte> Quants(byte* block);
}

/// <summary>Q8_0 weights for <see cref="Q8Tile"/>.</summary>
internal readonly unsafe struct Q8_0Weights : IQ8BlockWeights
{
    public static int BlockBytes => Q8_0.BlockBytes;
    public static bool TwoAccumulators => true;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<sbyte> Quants(byte* block) => Vector256.Load((sbyte*)(block + 2));
}

/// <summary>Q4_0 weights for <see cref="Q8Tile"/>: nibbles minus 8.</summary>
internal readonly unsafe struct Q4_0Weights : IQ8BlockWeights
{
    public static int BlockBytes => Q4_0.BlockBytes;
    public static bool TwoAccumulators => false;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<sbyte> Quants(byte* block) => (SimdHelpers.Nibbles16(block + 2) - Vector256.Create((byte)8)).AsSByte();
}

/// <summary>
/// Prefill products of Q8_0-activation weight types, register-blocked: four weight rows times two activation rows per
/// pass over the blocks. A 512-bit register holds the same block of two weight rows (low half row r, high half row
/// r + 1), so each lane sees exactly the multiply-adds of the type's AVX2 single-pair kernel in the same order, and the
/// results equal it bit for bit (the serving scheduler relies on that). What the tile saves is per-pair work: the
/// weights' absolute values and signs are taken once for both activation rows, the activations' negation once for
/// all four weight rows, and AVX-512 has no <c>vpsignb</c> anyway, so the sign trick becomes one bitwise select.
/// </summary>
internal static unsafe class Q8Tile
{
    /// <summary>True when the 512-bit tile can run.</summary>
    public static readonly bool Supported = Vector512.IsHardwareAccelerated && Avx512BW.IsSupported && SimdHelpers.Avx2Fma;

    /// <summary><c>y[k * yStride + j]</c> = dot(weight row <c>w + j * rowBytes</c>, activation row k) for j &lt; 4 and
    /// k &lt; <paramref name="acts"/> (1 or 2), activation rows <paramref name="actBytes"/> apart.</summary>
    public static void Multiply<TW>(byte* w, long rowBytes, byte* a, long actBytes, int acts, int nb, float* y, long yStride)
        where TW : IQ8BlockWeights
    {
        // Per activation row k and row pair p: accumulators e (even blocks, or all blocks) and o (odd blocks).
        Vector512<float> e00 = Vector512<float>.Zero, e01 = e00, e10 = e00, e11 = e00;
        Vector512<float> o00 = e00, o01 = e00, o10 = e00, o11 = e00;
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        byte* a0 = a, a1 = acts > 1 ? a + actBytes : a;
        for (int i = 0; i < nb; i++)
        {
            long wo = (long)i * TW.BlockBytes, ao = (long)i * Q8_0.BlockBytes;
            // Weights: rows 0|1 and 2|3 side by side; magnitude and sign mask shared by both activation rows.
            Vector512<sbyte> q01 = Vector512.Create(TW.Quants(w0 + wo), TW.Quants(w1 + wo));
            Vector512<sbyte> q23 = Vector512.Create(TW.Quants(w2 + wo), TW.Quants(w3 + wo));
            Vector512<byte> m01 = Avx512BW.Abs(q01), m23 = Avx512BW.Abs(q23);
            Vector512<sbyte> n01 = Vector512.LessThan(q01, Vector512<sbyte>.Zero), n23 = Vector512.LessThan(q23, Vector512<sbyte>.Zero);
            Vector512<float> d01 = Vector512.Create(Vector256.Create(Fp16.Load(w0 + wo)), Vector256.Create(Fp16.Load(w1 + wo)));
            Vector512<float> d23 = Vector512.Create(Vector256.Create(Fp16.Load(w2 + wo)), Vector256.Create(Fp16.Load(w3 + wo)));
            bool odd = TW.TwoAccumulators && (i & 1) == 1;

            // Activation row 0: y with the weight's sign (the sign trick of ggml's mul_sum_i8_pairs).
            Vector256<sbyte> y0 = Vector256.Load((sbyte*)(a0 + ao + 2));
            Vector512<sbyte> p0 = Vector512.Create(y0, y0), q0 = Vector512<sbyte>.Zero - p0;
            float s0 = Fp16.Load(a0 + ao);
            Vector512<float> f00 = Products(m01, n01, q0, p0);
            Vector512<float> f01 = Products(m23, n23, q0, p0);
            if (odd)
            {
                o00 = Avx512F.FusedMultiplyAdd(d01 * s0, f00, o00);
                o01 = Avx512F.FusedMultiplyAdd(d23 * s0, f01, o01);
            }
            else
            {
                e00 = Avx512F.FusedMultiplyAdd(d01 * s0, f00, e00);
                e01 = Avx512F.FusedMultiplyAdd(d23 * s0, f01, e01);
            }
            if (acts < 2) continue;

            Vector256<sbyte> y1 = Vector256.Load((sbyte*)(a1 + ao + 2));
            Vector512<sbyte> p1 = Vector512.Create(y1, y1), q1 = Vector512<sbyte>.Zero - p1;
            float s1 = Fp16.Load(a1 + ao);
            Vector512<float> f10 = Products(m01, n01, q1, p1);
            Vector512<float> f11 = Products(m23, n23, q1, p1);
            if (odd)
            {
                o10 = Avx512F.FusedMultiplyAdd(d01 * s1, f10, o10);
                o11 = Avx512F.FusedMultiplyAdd(d23 * s1, f11, o11);
            }
            else
            {
                e10 = Avx512F.FusedMultiplyAdd(d01 * s1, f10, e10);
                e11 = Avx512F.FusedMultiplyAdd(d23 * s1, f11, e11);
            }
        }
        // The single-pair kernels end with HSum(acc0 + acc1) (Q8_0) or HSum(acc) (Q4_0: o stays +0, and adding +0
        // changes nothing, since an accumulator that starts at +0 never becomes -0).
        SimdHelpers.HSum4(e00 + o00, e01 + o01).Store(y);
        if (acts > 1) SimdHelpers.HSum4(e10 + o10, e11 + o11).Store(y + yStride);
    }

    /// <summary>Bytes <see cref="Pack{TW}"/> writes per block of 32 of a 4-row tile (a multiple of 64, for aligned loads).</summary>
    public const int PackedBlockBytes = 384;

    // Layout of one packed block: magnitudes of row pairs (0, 1) and (2, 3) at 0 and 64, their sign masks at 128 and
    // 192, their scales (8 lanes per row) at 256 and 320.

    /// <summary>Prefill with many activation rows: takes a 4-row tile's magnitudes, sign masks and scales once into
    /// <paramref name="packed"/> (<paramref name="nb"/> x <see cref="PackedBlockBytes"/>, 64-byte aligned), so that
    /// <see cref="MultiplyPacked{TW}"/> spends its instructions on the activations' side only. They are the values
    /// <see cref="Multiply{TW}"/> forms in registers, so the results equal it bit for bit.</summary>
    public static void Pack<TW>(byte* w, long rowBytes, int nb, byte* packed) where TW : IQ8BlockWeights
    {
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        for (int i = 0; i < nb; i++)
        {
            long wo = (long)i * TW.BlockBytes;
            byte* o = packed + (long)i * PackedBlockBytes;
            Vector512<sbyte> q01 = Vector512.Create(TW.Quants(w0 + wo), TW.Quants(w1 + wo));
            Vector512<sbyte> q23 = Vector512.Create(TW.Quants(w2 + wo), TW.Quants(w3 + wo));
            Avx512BW.Abs(q01).StoreAligned(o);
            Avx512BW.Abs(q23).StoreAligned(o + 64);
            Vector512.LessThan(q01, Vector512<sbyte>.Zero).StoreAligned((sbyte*)(o + 128));
            Vector512.LessThan(q23, Vector512<sbyte>.Zero).StoreAligned((sbyte*)(o + 192));
            Vector512.Create(Vector256.Create(Fp16.Load(w0 + wo)), Vector256.Create(Fp16.Load(w1 + wo))).StoreAligned((float*)(o + 256));
            Vector512.Create(Vector256.Create(Fp16.Load(w2 + wo)), Vector256.Create(Fp16.Load(w3 + wo))).StoreAligned((float*)(o + 320));
        }
    }

    /// <summary>Bytes of one activation row packed by <see cref="PackActivations"/>.</summary>
    public static long PackedActivationBytes(int nb) => 64L * nb + ((4L * nb + 63) & ~63L);

    /// <summary>The activation side of <see cref="MultiplyPacked{TW}"/>, done once per product instead of once per 4-row
    /// tile: each Q8_0 block's 32 values duplicated into both halves of a 64-byte line (one per weight row of a pair),
    /// and its scale widened to float. Row layout: the lines of the <paramref name="nb"/> blocks, then their scales.</summary>
    public static void PackActivations(byte* a, int nb, byte* dst)
    {
        float* scales = (float*)(dst + 64L * nb);
        for (int i = 0; i < nb; i++)
        {
            byte* block = a + (long)i * Q8_0.BlockBytes;
            Vector256<byte> v = Vector256.Load(block + 2);
            Vector512.Create(v, v).StoreAligned(dst + 64L * i);
            scales[i] = Fp16.Load(block);
        }
    }

    /// <summary><see cref="Multiply{TW}"/> over a tile packed by <see cref="Pack{TW}"/> and all <paramref name="acts"/>
    /// activation rows packed by <see cref="PackActivations"/> (<paramref name="actBytes"/> apart, two at a time): the same
    /// operations on the same values.</summary>
    public static void MultiplyPacked<TW>(byte* packed, byte* a, long actBytes, int acts, int nb, float* y, long yStride)
        where TW : IQ8BlockWeights
    {
        int b = 0;
        for (; b + 2 <= acts; b += 2) RunPacked<TW, TwoActs>(packed, a + b * actBytes, a + (b + 1) * actBytes, nb, y + b * yStride, yStride);
        if (b < acts) RunPacked<TW, OneAct>(packed, a + b * actBytes, a + b * actBytes, nb, y + b * yStride, yStride);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RunPacked<TW, TActs>(byte* packed, byte* a0, byte* a1, int nb, float* y, long yStride)
        where TW : IQ8BlockWeights where TActs : struct, IActCount
    {
        Vector512<float> e00 = Vector512<float>.Zero, e01 = e00, e10 = e00, e11 = e00;
        Vector512<float> o00 = e00, o01 = e00, o10 = e00, o11 = e00;
        float* sc0 = (float*)(a0 + 64L * nb), sc1 = (float*)(a1 + 64L * nb);
        for (int i = 0; i < nb; i++)
        {
            byte* o = packed + (long)i * PackedBlockBytes;
            Vector512<byte> m01 = Vector512.LoadAligned(o), m23 = Vector512.LoadAligned(o + 64);
            Vector512<sbyte> n01 = Vector512.LoadAligned((sbyte*)(o + 128)), n23 = Vector512.LoadAligned((sbyte*)(o + 192));
            Vector512<float> d01 = Vector512.LoadAligned((float*)(o + 256)), d23 = Vector512.LoadAligned((float*)(o + 320));
            bool odd = TW.TwoAccumulators && (i & 1) == 1;

            // Activation row 0: y with the weight's sign (the sign trick of ggml's mul_sum_i8_pairs).
            Vector512<sbyte> p0 = Vector512.LoadAligned((sbyte*)(a0 + 64L * i)), q0 = Vector512<sbyte>.Zero - p0;
            float s0 = sc0[i];
            Vector512<float> f00 = Products(m01, n01, q0, p0);
            Vector512<float> f01 = Products(m23, n23, q0, p0);
            if (odd)
            {
                o00 = Avx512F.FusedMultiplyAdd(d01 * s0, f00, o00);
                o01 = Avx512F.FusedMultiplyAdd(d23 * s0, f01, o01);
            }
            else
            {
                e00 = Avx512F.FusedMultiplyAdd(d01 * s0, f00, e00);
                e01 = Avx512F.FusedMultiplyAdd(d23 * s0, f01, e01);
            }
            if (!TActs.Two) continue;

            Vector512<sbyte> p1 = Vector512.LoadAligned((sbyte*)(a1 + 64L * i)), q1 = Vector512<sbyte>.Zero - p1;
            float s1 = sc1[i];
            Vector512<float> f10 = Products(m01, n01, q1, p1);
            Vector512<float> f11 = Products(m23, n23, q1, p1);
            if (odd)
            {
                o10 = Avx512F.FusedMultiplyAdd(d01 * s1, f10, o10);
                o11 = Avx512F.FusedMultiplyAdd(d23 * s1, f11, o11);
            }
            else
            {
                e10 = Avx512F.FusedMultiplyAdd(d01 * s1, f10, e10);
                e11 = Avx512F.FusedMultiplyAdd(d23 * s1, f11, e11);
            }
        }
        SimdHelpers.HSum4(e00 + o00, e01 + o01).Store(y);
        if (TActs.Two) SimdHelpers.HSum4(e10 + o10, e11 + o11).Store(y + yStride);
    }

    /// <summary>One block of a row pair times one activation row, as floats per 4-value lane: the magnitudes times the
    /// activations carrying the weights' signs (<paramref name="negated"/> where <paramref name="signs"/> is set),
    /// pairs summed, then quads (ggml's <c>mul_sum_i8_pairs</c> and <c>sum_i16_pairs</c>), converted.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Products(Vector512<byte> magnitudes, Vector512<sbyte> signs, Vector512<sbyte> negated, Vector512<sbyte> activations)
        => Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(
            Avx512BW.MultiplyAddAdjacent(magnitudes, Vector512.ConditionalSelect(signs, negated, activations)), Vector512.Create((short)1)));
}
