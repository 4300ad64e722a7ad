namespace Tessera.Interop.Kernels;

/// <summary>Weight encodings the kernels read directly, in GGUF's block layouts.</summary>
public enum WeightFormat
{
    /// <summary>float32.</summary>
    F32,
    /// <summary>IEEE half.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>Blocks of 32: half scale + 32 int8 (34 bytes).</summary>
    Q8_0,
    /// <summary>Blocks of 32: half scale + 16 bytes of 4-bit values offset by 8 (18 bytes).</summary>
    Q4_0,
    /// <summary>Super-blocks of 256: half d, half dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles (144 bytes).</summary>
    Q4_K,
    /// <summary>Super-blocks of 256: 128 bytes low nibbles, 64 bytes high bits, 16 int8 scales, half d (210 bytes).</summary>
    Q6_K,
}

/// <summary>Block geometry of each <see cref="WeightFormat"/>.</summary>
public static class WeightFormats
{
    /// <summary>Values per block.</summary>
    public static int BlockSize(WeightFormat f) => f switch
    {
        WeightFormat.F32 or WeightFormat.F16 or WeightFormat.BF16 => 1,
        WeightFormat.Q8_0 or WeightFormat.Q4_0 => 32,
        WeightFormat.Q4_K or WeightFormat.Q6_K => 256,
        _ => throw new ArgumentOutOfRangeException(nameof(f), f, "unknown weight format"),
    };

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(WeightFormat f) => f switch
    {
        WeightFormat.F32 => 4,
        WeightFormat.F16 or WeightFormat.BF16 => 2,
        WeightFormat.Q8_0 => 34,
        WeightFormat.Q4_0 => 18,
        WeightFormat.Q4_K => 144,
        WeightFormat.Q6_K => 210,
        _ => throw new ArgumentOutOfRangeException(nameof(f), f, "unknown weight format"),
    };

    /// <summary>Bytes of one row of <paramref name="cols"/> values; throws when cols is not a whole number of blocks.</summary>
    public static long RowBytes(WeightFormat f, int cols)
    {
        int bs = BlockSize(f);
        if (cols <= 0 || cols % bs != 0)
            throw new ArgumentException($"a {f} row needs a positive multiple of {bs} values, got {cols}", nameof(cols));
        return (long)cols / bs * BlockBytes(f);
    }

    /// <summary>The kernel name suffix, e.g. <c>q4_k</c>.</summary>
    internal static string Suffix(WeightFormat f) => f.ToString().ToLowerInvariant();
}
