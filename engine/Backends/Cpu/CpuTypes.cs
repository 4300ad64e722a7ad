using Tessera.Model;

namespace Tessera.Backends.Cpu;

/// <summary>Host float32 buffer.</summary>
internal sealed class CpuActivation(int length) : Activation
{
    public readonly float[] Data = new float[length];
    public override int Length => Data.Length;
}

/// <summary>On the CPU a weight is used in place, in the file's mapping.</summary>
internal sealed class CpuWeight(WeightTensor source) : BackendWeight
{
    public override WeightTensor Source { get; } = source;
}

internal sealed class CpuVector(float[] data) : BackendVector
{
    public readonly float[] Data = data;
    public override int Length => Data.Length;
}

/// <summary>
/// F16 keys and values as llama.cpp's default cache type (the rounding of K and V to half precision is part of the
/// reference's numbers, so the CPU backend keeps it). Per layer one K and one V pool of (position slot, kv_heads *
/// head_dim). A paged cache splits the slots into blocks of <see cref="BlockSize"/> reached through a sequence's
/// block table; a contiguous one is the same pool read with the identity table (slot = position), so both paths
/// share one attention loop and give the same numbers.
/// </summary>
internal sealed class CpuKvCache : KvCache
{
    public CpuKvCache(LlamaConfig config, int capacity, int blockSize = 0)
    {
        Config = config;
        Cap = capacity;
        BlockSize = blockSize;
        K = new Half[config.Layers][];
        V = new Half[config.Layers][];
        for (int l = 0; l < config.Layers; l++)
        {
            K[l] = new Half[(long)capacity * config.KvDim];
            V[l] = new Half[(long)capacity * config.KvDim];
        }
    }

    public LlamaConfig Config { get; }
    public readonly int Cap;
    /// <summary>Positions per block when paged; 0 for a contiguous cache.</summary>
    public readonly int BlockSize;
    public readonly Half[][] K;
    public readonly Half[][] V;
    public override int Capacity => Cap;
}
