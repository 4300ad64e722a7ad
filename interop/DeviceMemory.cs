using Tessera.Interop.Driver;

namespace Tessera.Interop;

/// <summary>An owned range of device memory (bytes). Copies are queued on a stream; host spans passed to the
/// pageable-memory copies are only read or written while the call runs (the device-to-host copy synchronizes).</summary>
public sealed unsafe class DeviceMemory : IDisposable
{
    private ulong _ptr;

    /// <summary>Allocates <paramref name="bytes"/> bytes (contents undefined) in <paramref name="context"/>.</summary>
    public DeviceMemory(CudaContext context, long bytes)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        ulong p;
        Cu.Check(CuNative.cuMemAlloc_v2(&p, (nuint)bytes), "cuMemAlloc_v2");
        _ptr = p;
        Bytes = bytes;
    }

    /// <summary>Size in bytes.</summary>
    public long Bytes { get; }

    /// <summary>The device address (for kernel arguments).</summary>
    public ulong Pointer => _ptr != 0 ? _ptr : throw new ObjectDisposedException(nameof(DeviceMemory));

    /// <summary>The whole allocation as a byte view.</summary>
    public DeviceSpan<byte> Span => new(Pointer, Bytes);

    /// <summary>Checks that [offset, offset + count) lies within a buffer of <paramref name="length"/> elements.</summary>
    internal static void CheckRange(long offset, long count, long length, string what)
    {
        if (offset < 0 || count < 0 || offset > length || count > length - offset)
            throw new ArgumentOutOfRangeException(what, $"range [{offset}, {offset + count}) is outside the buffer of {length}");
    }

    /// <summary>Queues a copy of <paramref name="source"/> to byte <paramref name="offset"/>.</summary>
    public void Upload(ReadOnlySpan<byte> source, long offset, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        CheckRange(offset, source.Length, Bytes, nameof(source));
        if (source.IsEmpty) return;
        fixed (byte* s = source)
            Cu.Check(CuNative.cuMemcpyHtoDAsync_v2(Pointer + (ulong)offset, s, (nuint)source.Length, stream.Handle), "cuMemcpyHtoDAsync_v2");
    }

    /// <summary>Copies from byte <paramref name="offset"/> into <paramref name="destination"/> and waits for it.</summary>
    public void Download(long offset, Span<byte> destination, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        CheckRange(offset, destination.Length, Bytes, nameof(destination));
        if (destination.IsEmpty) return;
        fixed (byte* d = destination)
        {
            Cu.Check(CuNative.cuMemcpyDtoHAsync_v2(d, Pointer + (ulong)offset, (nuint)destination.Length, stream.Handle), "cuMemcpyDtoHAsync_v2");
            stream.Synchronize();
        }
    }

    /// <summary>Queues a device-to-device copy of <paramref name="bytes"/> bytes.</summary>
    public static void Copy(DeviceMemory src, long srcOffset, DeviceMemory dst, long dstOffset, long bytes, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentNullException.ThrowIfNull(dst);
        ArgumentNullException.ThrowIfNull(stream);
        CheckRange(srcOffset, bytes, src.Bytes, nameof(src));
        CheckRange(dstOffset, bytes, dst.Bytes, nameof(dst));
        if (bytes == 0) return;
        Cu.Check(CuNative.cuMemcpyDtoDAsync_v2(dst.Pointer + (ulong)dstOffset, src.Pointer + (ulong)srcOffset, (nuint)bytes, stream.Handle), "cuMemcpyDtoDAsync_v2");
    }

    /// <summary>Queues setting every byte to <paramref name="value"/>.</summary>
    public void Fill(byte value, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Cu.Check(CuNative.cuMemsetD8Async(Pointer, value, (nuint)Bytes, stream.Handle), "cuMemsetD8Async");
    }

    /// <summary>Frees the memory (callers synchronize first if kernels may still use it).</summary>
    public void Dispose()
    {
        if (_ptr == 0) return;
        Cu.Ignore(CuNative.cuMemFree_v2(_ptr));
        _ptr = 0;
    }
}

/// <summary>A typed device array of <typeparamref name="T"/>.</summary>
public sealed class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    /// <summary>Allocates <paramref name="length"/> elements.</summary>
    public unsafe DeviceBuffer(CudaContext context, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        Length = length;
        Memory = new DeviceMemory(context, (long)length * sizeof(T));
    }

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>The underlying bytes.</summary>
    public DeviceMemory Memory { get; }

    /// <summary>The device address of element 0.</summary>
    public ulong Pointer => Memory.Pointer;

    /// <summary>The device address of element <paramref name="index"/>.</summary>
    public unsafe ulong At(int index)
    {
        DeviceMemory.CheckRange(index, 0, Length, nameof(index));
        return Memory.Pointer + (ulong)index * (ulong)sizeof(T);
    }

    /// <summary>Queues a copy of <paramref name="source"/> to element <paramref name="offset"/>.</summary>
    public unsafe void Upload(ReadOnlySpan<T> source, CudaStream stream, int offset = 0)
    {
        DeviceMemory.CheckRange(offset, source.Length, Length, nameof(source));
        Memory.Upload(System.Runtime.InteropServices.MemoryMarshal.AsBytes(source), (long)offset * sizeof(T), stream);
    }

    /// <summary>Copies elements from <paramref name="offset"/> into <paramref name="destination"/> and waits for it.</summary>
    public unsafe void Download(Span<T> destination, CudaStream stream, int offset = 0)
    {
        DeviceMemory.CheckRange(offset, destination.Length, Length, nameof(destination));
        Memory.Download((long)offset * sizeof(T), System.Runtime.InteropServices.MemoryMarshal.AsBytes(destination), stream);
    }

    /// <summary>The whole buffer as a view.</summary>
    public DeviceSpan<T> Span => new(Memory.Pointer, Length);

    /// <summary>Elements [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="count"/>) as a view.</summary>
    public DeviceSpan<T> Slice(int offset, int count) => Span.Slice(offset, count);

    /// <summary>Frees the memory.</summary>
    public void Dispose() => Memory.Dispose();
}
