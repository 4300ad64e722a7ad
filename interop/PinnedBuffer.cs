using Tessera.Interop.Driver;

namespace Tessera.Interop;

/// <summary>Page-locked host memory: copies from and to it are truly asynchronous and run at full bus speed.</summary>
public sealed unsafe class PinnedBuffer : IDisposable
{
    private void* _ptr;

    /// <summary>Allocates <paramref name="bytes"/> bytes of pinned host memory in <paramref name="context"/>.</summary>
    public PinnedBuffer(CudaContext context, long bytes)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, int.MaxValue);
        void* p;
        Cu.Check(CuNative.cuMemAllocHost_v2(&p, (nuint)bytes), "cuMemAllocHost_v2");
        _ptr = p;
        Bytes = (int)bytes;
    }

    /// <summary>Size in bytes.</summary>
    public int Bytes { get; }

    /// <summary>The memory as a span (valid until disposed).</summary>
    public Span<byte> Span => _ptr != null ? new Span<byte>(_ptr, Bytes) : throw new ObjectDisposedException(nameof(PinnedBuffer));

    /// <summary>Queues a copy of <paramref name="bytes"/> bytes from <paramref name="src"/> into this buffer; the data is
    /// there after <paramref name="stream"/> synchronizes.</summary>
    public void DownloadAsync(DeviceMemory src, long srcOffset, int bytes, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentNullException.ThrowIfNull(stream);
        DeviceMemory.CheckRange(0, bytes, Bytes, nameof(bytes));
        DeviceMemory.CheckRange(srcOffset, bytes, src.Bytes, nameof(srcOffset));
        Cu.Check(CuNative.cuMemcpyDtoHAsync_v2(_ptr, src.Pointer + (ulong)srcOffset, (nuint)bytes, stream.Handle), "cuMemcpyDtoHAsync_v2");
    }

    /// <summary>Queues a copy of the first <paramref name="bytes"/> bytes of this buffer to <paramref name="dst"/>.</summary>
    public void UploadAsync(DeviceMemory dst, long dstOffset, int bytes, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(dst);
        ArgumentNullException.ThrowIfNull(stream);
        DeviceMemory.CheckRange(0, bytes, Bytes, nameof(bytes));
        DeviceMemory.CheckRange(dstOffset, bytes, dst.Bytes, nameof(dstOffset));
        Cu.Check(CuNative.cuMemcpyHtoDAsync_v2(dst.Pointer + (ulong)dstOffset, _ptr, (nuint)bytes, stream.Handle), "cuMemcpyHtoDAsync_v2");
    }

    /// <summary>Frees the memory.</summary>
    public void Dispose()
    {
        if (_ptr == null) return;
        Cu.Ignore(CuNative.cuMemFreeHost(_ptr));
        _ptr = null;
    }
}
