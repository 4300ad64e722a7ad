using System.Runtime.InteropServices;
using Tessera.Backends.Cpu;
using Tessera.Backends.Cuda;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Backends.OpSuite;

/// <summary>Deterministic inputs for op cases, and host writes into any backend's activations.</summary>
internal static class OpInputs
{
    /// <summary>Uniform floats in [-scale, scale) from a fixed seed.</summary>
    public static float[] Floats(int seed, int n, float scale = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>Copies <paramref name="data"/> into <paramref name="a"/> (IBackend has reads only; inputs come from here).</summary>
    public static void Write(IBackend backend, Activation a, ReadOnlySpan<float> data)
    {
        switch (a)
        {
            case CpuActivation c: data.CopyTo(c.Data); break;
            case CudaActivation when backend is CudaBackend cuda: cuda.Write(a, 0, data); break;
            default: throw new NotSupportedException($"the op suite cannot write inputs into {backend.Name} activations");
        }
    }

    /// <summary>A new activation of the backend holding <paramref name="data"/>.</summary>
    public static Activation Upload(IBackend backend, float[] data)
    {
        var a = backend.Allocate(data.Length);
        Write(backend, a, data);
        return a;
    }

    /// <summary>Reads the first <paramref name="n"/> floats of an activation.</summary>
    public static float[] Read(IBackend backend, Activation a, int n)
    {
        var r = new float[n];
        backend.Read(a, 0, r);
        return r;
    }
}

/// <summary>
/// A random weight matrix in native memory, in a GGUF type: float types from uniform values, block types from
/// random bytes with the block scales overwritten by small finite halves (so every bit pattern of the quants is
/// exercised but no scale is NaN or huge).
/// </summary>
internal sealed unsafe class RandomWeight : IDisposable
{
    private byte* _data;

    public RandomWeight(GgmlType type, int rows, int cols, int seed)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        long bytes = rowBytes * rows;
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        var span = new Span<byte>(_data, checked((int)bytes));
        var r = new Random(seed);
        switch (type)
        {
            case GgmlType.F32:
                var f = MemoryMarshal.Cast<byte, float>(span);
                for (int i = 0; i < f.Length; i++) f[i] = (float)(r.NextDouble() * 2 - 1);
                break;
            case GgmlType.F16:
                var h = MemoryMarshal.Cast<byte, Half>(span);
                for (int i = 0; i < h.Length; i++) h[i] = (Half)(r.NextDouble() * 2 - 1);
                break;
            case GgmlType.BF16:
                var b = MemoryMarshal.Cast<byte, ushort>(span);
                for (int i = 0; i < b.Length; i++) b[i] = BFloat16.FromSingle((float)(r.NextDouble() * 2 - 1));
                break;
            default:
                r.NextBytes(span);
                int bb = GgmlTypeInfo.BlockBytes(type);
                int[] scales = ScaleOffsets(type);
                for (long blk = 0; blk < bytes / bb; blk++)
                    foreach (int off in scales)
                        MemoryMarshal.Write(span[(int)(blk * bb + off)..], (Half)(0.002 + 0.01 * r.NextDouble()));
                break;
        }
        Tensor = new WeightTensor($"random.{type}", type, rows, cols, _data, bytes);
    }

    /// <summary>Byte offsets of the half-precision scales in one block of each block type the suite uses.</summary>
    private static int[] ScaleOffsets(GgmlType type) => type switch
    {
        GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0 => [0],
        GgmlType.Q4_1 or GgmlType.Q5_1 => [0, 2],
        GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
        GgmlType.Q6_K => [208],
        _ => throw new NotSupportedException($"the op suite has no random generator for {type}"),
    };

    public WeightTensor Tensor { get; }

    public void Dispose()
    {
        if (_data == null) return;
        NativeMemory.AlignedFree(_data);
        _data = null;
    }
}
