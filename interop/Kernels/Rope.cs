namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/rope.cu: grid (heads, rows), one thread per rotated pair; rows at consecutive positions
/// (<see cref="Launch"/>) or each at its own (<see cref="LaunchRows"/>).</summary>
public sealed unsafe class Rope(KernelLibrary library)
{
    private readonly CudaFunction _adjacent = library.Module("rope").Function("rope_f32_adjacent");
    private readonly CudaFunction _half = library.Module("rope").Function("rope_f32_half");

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> x, int rows, int heads, int headDim, int startPos, float theta)
    {
        const string K = "rope_f32";
        Elementwise.RequirePositive(rows, K, nameof(rows));
        Elementwise.RequirePositive(heads, K, nameof(heads));
        if (headDim <= 0 || headDim % 2 != 0 || headDim > 2048)
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, $"kernel '{K}': head_dim must be even and at most 2048");
        ArgumentOutOfRangeException.ThrowIfNegative(startPos);
        if (!(theta > 0) || float.IsInfinity(theta)) throw new ArgumentOutOfRangeException(nameof(theta), theta, $"kernel '{K}': theta must be positive");
        if (rows > 65535) throw new ArgumentOutOfRangeException(nameof(rows), rows, $"kernel '{K}': at most 65535 rows per launch (grid y)");
        if (heads > 65535 && rows > 1) throw new ArgumentOutOfRangeException(nameof(heads), heads, $"kernel '{K}': too many heads");
        x.RequireLength((long)rows * heads * headDim, K, nameof(x));
    }

    /// <summary>Checks the angle options: per-pair factors (head_dim / 2 of them, or none), a positive frequency scale
    /// and attention factor.</summary>
    internal static void CheckAngles(int headDim, DeviceSpan<float> factors, float freqScale, float attnFactor)
    {
        const string K = "rope_f32";
        if (factors.Pointer != 0) factors.RequireLength(headDim / 2, K, nameof(factors));
        if (!(freqScale > 0) || float.IsInfinity(freqScale)) throw new ArgumentOutOfRangeException(nameof(freqScale), freqScale, $"kernel '{K}': freq_scale must be positive");
        if (!(attnFactor > 0) || float.IsInfinity(attnFactor)) throw new ArgumentOutOfRangeException(nameof(attnFactor), attnFactor, $"kernel '{K}': attn_factor must be positive");
    }

    /// <summary>Rotates x (rows, heads × headDim) in place; row i is at position startPos + i.
    /// <paramref name="adjacentPairs"/>: pairs (2i, 2i+1) (GGUF), else (i, i + headDim/2) (NeoX). When
    /// <paramref name="position"/> is given, the first row's position is read from it on the device instead (a
    /// captured graph). The angle options are those of <see cref="LaunchRows"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> x, int rows, int heads, int headDim, int startPos, float theta, bool adjacentPairs,
        DeviceSpan<int> position = default, DeviceSpan<float> factors = default, float freqScale = 1f, float attnFactor = 1f)
    {
        Check(x, rows, heads, headDim, startPos, theta);
        CheckAngles(headDim, factors, freqScale, attnFactor);
        if (position.Pointer != 0) position.RequireLength(1, "rope_f32", nameof(position));
        Run(stream, x, rows, heads, headDim, startPos, position.Pointer, 0, theta, adjacentPairs, factors.Pointer, freqScale, attnFactor);
    }

    /// <summary>Checks the arguments of <see cref="LaunchRows"/> (the positions live on the device: any value is safe,
    /// it only sets an angle).</summary>
    internal static void CheckRows(DeviceSpan<float> x, int rows, int heads, int headDim, DeviceSpan<int> positions, float theta)
    {
        Check(x, rows, heads, headDim, 0, theta);
        if (positions.Pointer == 0) throw new ArgumentException("kernel 'rope_f32': no positions given", nameof(positions));
        positions.RequireLength(rows, "rope_f32", nameof(positions));
    }

    /// <summary>Rotates x (rows, heads × headDim) in place; row i is at position <paramref name="positions"/>[i] (a
    /// ragged batch: several sequences, each at its own positions). Pair i's angle is divided by
    /// <paramref name="factors"/>[i] when given (head_dim / 2 floats) and multiplied by <paramref name="freqScale"/>; cos
    /// and sin are multiplied by <paramref name="attnFactor"/>.</summary>
    public void LaunchRows(CudaStream stream, DeviceSpan<float> x, int rows, int heads, int headDim, DeviceSpan<int> positions, float theta,
        bool adjacentPairs, DeviceSpan<float> factors = default, float freqScale = 1f, float attnFactor = 1f)
    {
        CheckRows(x, rows, heads, headDim, positions, theta);
        CheckAngles(headDim, factors, freqScale, attnFactor);
        Run(stream, x, rows, heads, headDim, 0, 0, positions.Pointer, theta, adjacentPairs, factors.Pointer, freqScale, attnFactor);
    }

    private void Run(CudaStream stream, DeviceSpan<float> x, int rows, int heads, int headDim, int startPos, ulong position, ulong positions,
        float theta, bool adjacentPairs, ulong factors, float freqScale, float attnFactor)
    {
        ulong p = x.Pointer, pp = position, rp = positions, fp = factors;
        int h = heads, d = headDim, s = startPos;
        float fs = freqScale, af = attnFactor;
        // The same float the CPU reference computes, so that the angle recurrence starts from the same scale.
        float scale = MathF.Pow(theta, -2.0f / headDim);
        void** args = stackalloc void*[] { &p, &h, &d, &s, &pp, &rp, &scale, &fp, &fs, &af };
        uint threads = (uint)((headDim / 2 + 31) / 32 * 32);
        (adjacentPairs ? _adjacent : _half).Launch(new LaunchShape((uint)heads, (uint)rows, 1, threads, 1, 1), stream, args);
    }
}
