using Tessera.Interop.Driver;

namespace Tessera.Interop;

/// <summary>A kernel entry point of a <see cref="CudaModule"/> (valid while the module is loaded).</summary>
public sealed unsafe class CudaFunction
{
    private readonly nint _function;

    internal CudaFunction(nint function, string name)
    {
        _function = function;
        Name = name;
    }

    /// <summary>The entry point's name.</summary>
    public string Name { get; }

    /// <summary>Registers per thread.</summary>
    public int Registers => Attribute(4 /* CU_FUNC_ATTRIBUTE_NUM_REGS */);

    /// <summary>Bytes of local memory per thread (non-zero means spills or local arrays).</summary>
    public int LocalBytes => Attribute(3 /* CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES */);

    /// <summary>The largest block this kernel can be launched with.</summary>
    public int MaxThreadsPerBlock => Attribute(0 /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK */);

    private int Attribute(int attribute)
    {
        int v;
        Cu.Check(CuNative.cuFuncGetAttribute(&v, attribute, _function), "cuFuncGetAttribute");
        return v;
    }

    /// <summary>Allows up to <paramref name="bytes"/> of dynamic shared memory (needed above 48 KiB).</summary>
    public void SetMaxDynamicSharedMemory(int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Cu.Check(CuNative.cuFuncSetAttribute(_function, 8 /* MAX_DYNAMIC_SHARED_SIZE_BYTES */, bytes), "cuFuncSetAttribute");
    }

    /// <summary>Queues the kernel. <paramref name="args"/> points at an array of pointers to each argument's value,
    /// in the kernel's parameter order (the launcher owns that layout).</summary>
    public void Launch(LaunchShape shape, CudaStream stream, void** args)
    {
        ArgumentNullException.ThrowIfNull(stream);
        shape.Validate(Name);
        int r = CuNative.cuLaunchKernel(_function, shape.GridX, shape.GridY, shape.GridZ, shape.BlockX, shape.BlockY, shape.BlockZ,
            shape.SharedBytes, stream.Handle, args, null);
        if (r != 0) throw new CudaException("cuLaunchKernel", r, $"kernel '{Name}' grid ({shape.GridX},{shape.GridY},{shape.GridZ}) block ({shape.BlockX},{shape.BlockY},{shape.BlockZ}) shared {shape.SharedBytes}");
    }
}

/// <summary>Grid and block dimensions and dynamic shared memory of one launch.</summary>
/// <param name="GridX">Blocks in x.</param><param name="GridY">Blocks in y.</param><param name="GridZ">Blocks in z.</param>
/// <param name="BlockX">Threads in x.</param><param name="BlockY">Threads in y.</param><param name="BlockZ">Threads in z.</param>
/// <param name="SharedBytes">Dynamic shared memory in bytes.</param>
public readonly record struct LaunchShape(uint GridX, uint GridY, uint GridZ, uint BlockX, uint BlockY, uint BlockZ, uint SharedBytes = 0)
{
    /// <summary>A 1-D grid of 1-D blocks.</summary>
    public static LaunchShape Linear(uint blocks, uint threads, uint sharedBytes = 0) => new(blocks, 1, 1, threads, 1, 1, sharedBytes);

    /// <summary>Throws when the shape cannot be launched on any device (zero sizes, over 1024 threads, grid y/z over 65535).</summary>
    public void Validate(string kernel)
    {
        if (GridX == 0 || GridY == 0 || GridZ == 0 || BlockX == 0 || BlockY == 0 || BlockZ == 0)
            throw new ArgumentException($"kernel '{kernel}': launch with an empty grid or block ({GridX},{GridY},{GridZ})x({BlockX},{BlockY},{BlockZ})");
        if ((ulong)BlockX * BlockY * BlockZ > 1024)
            throw new ArgumentException($"kernel '{kernel}': {BlockX * BlockY * BlockZ} threads per block exceeds 1024");
        if (GridY > 65535 || GridZ > 65535 || GridX > int.MaxValue)
            throw new ArgumentException($"kernel '{kernel}': grid ({GridX},{GridY},{GridZ}) exceeds the device limits");
    }
}
