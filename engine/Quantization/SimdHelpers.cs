using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>Small x86 building blocks shared by the quantized dot products.</summary>
internal static class SimdHelpers
{
    /// <summary>True when the AVX2 + FMA kernels can run.</summary>
    public static bool Avx2Fma => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Sums of 4 adjacent products of unsigned <paramref name="u"/> and signed <paramref name="s"/> bytes, as 8 int32.
    /// Without VNNI the middle step is <c>vpmaddubsw</c>, which saturates pair sums above 32767: callers keep |u| &lt;= 128 and
    /// never pair 128 with -128 (true of every ggml quant format and of Q8 activations, which stay in [-127, 127]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotU8I8(Vector256<byte> u, Vector256<sbyte> s)
    {
        if (AvxVnni.IsSupported) return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s);
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1));
    }

    /// <summary>Sums of 4 adjacent products of two signed byte vectors as 8 int32 (the sign trick: |x| times y with x's sign).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotI8I8(Vector256<sbyte> x, Vector256<sbyte> y)
        => DotU8I8(Avx2.Abs(x), Avx2.Sign(y, x));

    /// <summary>Horizontal sum of 8 int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int HSum(Vector256<int> v) => Vector256.Sum(v);

    /// <summary>Horizontal sum of 8 floats, pairwise like ggml's <c>hsum_float_8</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HSum(Vector256<float> v)
    {
        Vector128<float> r = v.GetLower() + v.GetUpper();
        r += Vector128.Create(r.GetElement(2), r.GetElement(3), 0f, 0f);
        return r.GetElement(0) + r.GetElement(1);
    }

    /// <summary><see cref="HSum(Vector256{float})"/> of four rows at once: rows 0 and 1 are the halves of
    /// <paramref name="a"/>, rows 2 and 3 those of <paramref name="b"/>. The same additions on the same pairs in the same
    /// order, side by side (float addition is commutative, so each lane's result is the scalar one bit for bit), where
    /// four separate sums would take four extract-and-shuffle chains.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> HSum4(Vector512<float> a, Vector512<float> b)
    {
        Vector512<float> ta = a + Avx512F.Shuffle4x128(a, a, 0b10_11_00_01); // 128-bit block 0: lo + hi of row 0; block 2: of row 1
        Vector512<float> tb = b + Avx512F.Shuffle4x128(b, b, 0b10_11_00_01);
        Vector512<float> u = Avx512F.Shuffle4x128(ta, tb, 0b10_00_10_00);    // one block per row: r0..r3
        u += Avx512F.Shuffle(u, u, 0b00_00_11_10);                           // lane 0: r0 + r2, lane 1: r1 + r3
        u += Avx512F.Shuffle(u, u, 0b00_00_00_01);                           // lane 0: (r0 + r2) + (r1 + r3)
        return Avx512F.PermuteVar16x32(u, Vector512.Create(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower().GetLower();
    }

    /// <summary>Splits 16 packed bytes into 32 nibbles: low nibbles in the lower 128 bits, high nibbles in the upper 128 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<byte> Nibbles16(byte* p)
    {
        Vector128<byte> q = Vector128.Load(p);
        Vector128<byte> m = Vector128.Create((byte)0x0F);
        return Vector256.Create(q & m, Vector128.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m);
    }

    /// <summary>Splits 32 packed bytes into their low nibbles and high nibbles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe (Vector256<byte> Lo, Vector256<byte> Hi) Nibbles32(byte* p)
    {
        Vector256<byte> q = Vector256.Load(p);
        Vector256<byte> m = Vector256.Create((byte)0x0F);
        return (q & m, Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m);
    }

    /// <summary>Expands 32 bits into 32 bytes: 0xFF where the bit is set, 0 elsewhere (ggml's <c>bytes_from_bits_32</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> BytesFromBits(uint bits)
    {
        Vector256<byte> shuf = Vector256.Create(
            (byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        Vector256<byte> bytes = Avx2.Shuffle(Vector256.Create(bits).AsByte(), shuf);
        Vector256<byte> sel = Vector256.Create(0x7fbfdfef_f7fbfdfeUL).AsByte();
        bytes |= sel;
        return Vector256.Equals(bytes, Vector256<byte>.AllBitsSet);
    }
}
