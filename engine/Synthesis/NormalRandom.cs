using System.Numerics.Tensors;

namespace Tessera.Synthesis;

/// <summary>
/// Seeded normal random numbers for weights: xorshift64* uniforms turned into normals by Box-Muller, vectorized
/// through TensorPrimitives. Each row has its own stream derived from (seed, tensor, row), so rows can be made in
/// any order and on any thread and the file is still the same bytes for the same seed.
/// </summary>
internal static class NormalRandom
{
    /// <summary>splitmix64's finalizer: spreads nearby inputs (consecutive rows) over the whole state space.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Fills <paramref name="dst"/> (even length) with normal(0, <paramref name="std"/>) values for row
    /// <paramref name="row"/> of tensor <paramref name="tensor"/>. <paramref name="scratch"/> must hold at least
    /// dst.Length floats.</summary>
    public static void FillRow(ulong seed, int tensor, long row, float std, Span<float> dst, Span<float> scratch)
    {
        int half = dst.Length / 2;
        if (dst.Length % 2 != 0) throw new ArgumentException("row length must be even", nameof(dst));
        ulong s = Mix(Mix(seed ^ 0x9E3779B97F4A7C15UL) + Mix(((ulong)(uint)tensor << 40) ^ (ulong)row));
        if (s == 0) s = 1; // xorshift's one fixed point
        Span<float> u1 = scratch[..half], u2 = scratch.Slice(half, half);
        for (int i = 0; i < half; i++)
        {
            // 24-bit uniforms: u1 in (0, 1] so log(u1) is finite, u2 in [0, 1).
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
            ulong r = s * 0x2545F4914F6CDD1DUL;
            u1[i] = ((r >> 40) + 1) * (1f / 16777216f);
            u2[i] = ((r >> 16) & 0xFFFFFF) * (1f / 16777216f);
        }
        // r = std * sqrt(-2 ln u1), theta = 2 pi u2; the row gets r cos(theta) in its first half and r sin(theta) in its second.
        TensorPrimitives.Log(u1, u1);
        TensorPrimitives.Multiply(u1, -2f, u1);
        TensorPrimitives.Sqrt(u1, u1);
        TensorPrimitives.Multiply(u1, std, u1);
        TensorPrimitives.Multiply(u2, 2 * MathF.PI, u2);
        Span<float> cos = dst[..half], sin = dst[half..];
        TensorPrimitives.SinCos(u2, sin, cos);
        TensorPrimitives.Multiply(cos, u1, cos);
        TensorPrimitives.Multiply(sin, u1, sin);
    }
}
