using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Quantization;

/// <summary>
/// How far ahead the decode kernels ask for weights. Decode reads every weight once, so it runs at the speed of one
/// core's stream from memory, and the hardware prefetcher alone keeps too few misses in flight: it stops at every
/// 4 KiB page and ramps up again after each short matrix. Asking for the weights a few KiB ahead (a prefetch never
/// faults, so running past the end of a matrix is harmless) took decode, in one process with the old distances
/// alternating, from 147–172 to 168–197 tok/s (stories110m shape, Q4_K_M) and from 16–18.5 to 20–24 tok/s (1B shape,
/// Q4_K_M); F16 and Q8_0 gained 20–25% going from 512 B to 4 KiB. Distances from 4 to 16 KiB measured alike.
/// </summary>
internal static unsafe class DecodePrefetch
{
    /// <summary>Bytes ahead on one linear stream: the single-row kernels (F16, BF16, Q8_0, Q4_0), whose rows follow
    /// each other in memory.</summary>
    public const int StreamBytes = 4096;

    /// <summary>Super-blocks ahead on each of the four rows of a K-quant tile (4.5 KiB in flight for Q4_K, 6.6 KiB for
    /// Q6_K). From 6 to 14 measured alike.</summary>
    public const int TileBlocks = 8;

    /// <summary>From super-block <paramref name="i"/> of a tile row, the offset of the super-block to ask for:
    /// <see cref="TileBlocks"/> further along the row or, past its end, along the same row of the next tile (four rows
    /// on), which is read next. Every super-block of a chunk but its first tile's first few is asked for exactly once,
    /// and for short rows (fewer super-blocks than the distance) the requests run linearly over the tiles ahead.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long TileOffset(int i, int nb, long rowBytes, int blockBytes) =>
        i + TileBlocks < nb ? (long)TileBlocks * blockBytes : 4 * rowBytes + (long)(TileBlocks - nb) * blockBytes;

    /// <summary>Asks for the <paramref name="blockBytes"/> at <paramref name="offset"/> past each of four row pointers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Rows4(byte* x0, byte* x1, byte* x2, byte* x3, long offset, int blockBytes)
    {
        for (int p = 0; p < blockBytes; p += 64)
        {
            Sse.Prefetch0(x0 + offset + p); Sse.Prefetch0(x1 + offset + p);
            Sse.Prefetch0(x2 + offset + p); Sse.Prefetch0(x3 + offset + p);
        }
    }
}
