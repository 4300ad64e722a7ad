using Tessera.Interop;
using Tessera.Model;

namespace Tessera.Backends.Cuda;

/// <summary>Device float32 buffer.</summary>
internal sealed class CudaActivation(DeviceBuffer<float> buffer) : Activation
{
    public DeviceBuffer<float> Buffer { get; } = buffer;
    public override int Length => Buffer.Length;
    public override void Dispose() { Buffer.Dispose(); base.Dispose(); }
}

/// <summary>A weight uploaded to the device in a format the kernels read (its file format, or F32 when the kernels
/// have no path for the file's type and it was dequantized on the host).</summary>
internal sealed class CudaWeight(WeightTensor source, Interop.Kernels.WeightFormat format, DeviceMemory memory) : BackendWeight
{
    public override WeightTensor Source { get; } = source;
    public Interop.Kernels.WeightFormat Format { get; } = format;
    public DeviceMemory Memory { get; } = memory;
}

internal sealed class CudaVector(DeviceBuffer<float> buffer) : BackendVector
{
    public DeviceBuffer<float> Buffer { get; } = buffer;
    public override int Length => Buffer.Length;
}

/// <summary>The paged cache of a ragged batch (<see cref="RaggedBatch"/>'s layout, as the CPU backend's): per layer a
/// K pool and a V pool of [blocks][blockSize][kv_dim] F16, zeroed once, shared by every sequence through its block
/// table.</summary>
internal sealed class CudaPagedKvCache : KvCache
{
    public CudaPagedKvCache(CudaContext context, CudaStream stream, LlamaConfig config, int blocks, int blockSize)
    {
        Config = config;
        Blocks = blocks;
        BlockSize = blockSize;
        int halves = checked(blocks * blockSize * config.KvDim);
        K = new DeviceBuffer<Half>[config.Layers];
        V = new DeviceBuffer<Half>[config.Layers];
        try
        {
            for (int l = 0; l < config.Layers; l++)
            {
                K[l] = new DeviceBuffer<Half>(context, halves);
                V[l] = new DeviceBuffer<Half>(context, halves);
                // Zeroed so that a slot never written is a finite number; the kernels never read one, but a bug that
                // did would then show as a wrong value in the op suite rather than a NaN that poisons a whole row.
                K[l].Memory.Fill(0, stream);
                V[l].Memory.Fill(0, stream);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public LlamaConfig Config { get; }
    public readonly int Blocks;
    /// <summary>Positions per block (a power of two).</summary>
    public readonly int BlockSize;
    public readonly DeviceBuffer<Half>[] K;
    public readonly DeviceBuffer<Half>[] V;
    public override int Capacity => Blocks * BlockSize;

    public override void Dispose()
    {
        foreach (var b in K) b?.Dispose();
        foreach (var b in V) b?.Dispose();
        base.Dispose();
    }
}
