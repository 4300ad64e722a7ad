using System.Numerics;
using System.Runtime.InteropServices;
using Tessera.Interop;

namespace Tessera.Backends.Cuda;

/// <summary>
/// An int array the kernels read, kept on the device and uploaded only when it differs from the last upload (a model
/// step calls its ops with the same layout in every layer). The upload goes through one pinned staging buffer,
/// reused; an event recorded after the copy is waited on before the staging buffer is overwritten. Buffers grow only
/// when a longer array arrives.
/// </summary>
internal sealed class StagedInts(CudaContext context, CudaStream stream) : IDisposable
{
    private int _uploadedLength = -1;   // ints of the last upload (-1: none)
    private PinnedBuffer? _staging;     // what the last upload copied from (never written while that copy may run)
    private DeviceBuffer<int>? _device;
    private CudaEvent? _copied;         // recorded after the last upload's copy

    /// <summary>The device copy (at least as long as the last upload).</summary>
    public DeviceBuffer<int> Device => _device ?? throw new InvalidOperationException("nothing was uploaded yet");

    /// <summary>Makes the device hold <paramref name="ints"/>, queuing a copy unless it already does.</summary>
    public void Upload(ReadOnlySpan<int> ints)
    {
        int length = ints.Length;
        if (length == _uploadedLength && ints.SequenceEqual(MemoryMarshal.Cast<byte, int>(_staging!.Span)[..length])) return;

        _copied?.Synchronize();  // the last upload's copy out of the staging buffer has finished
        if (_staging is null || _staging.Bytes < length * sizeof(int))
        {
            _staging?.Dispose();
            _staging = new PinnedBuffer(context, (long)Grow(length) * sizeof(int));
        }
        if (_device is null || _device.Length < length)
        {
            stream.Synchronize();  // queued kernels may still read the old device copy
            _device?.Dispose();
            _device = new DeviceBuffer<int>(context, Grow(length));
        }
        _uploadedLength = -1;  // until the copy below is queued
        ints.CopyTo(MemoryMarshal.Cast<byte, int>(_staging.Span));
        _staging.UploadAsync(_device.Memory, 0, length * sizeof(int), stream);
        (_copied ??= new CudaEvent(context)).Record(stream);
        _uploadedLength = length;
    }

    /// <summary>Room for at least <paramref name="n"/> ints, in powers of two from 4096, so that a growing array
    /// reallocates a few times only.</summary>
    public static int Grow(int n) => (int)Math.Min((long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(n, 4096)), MaxInts);

    /// <summary>The most ints an upload may hold (the pinned staging buffer holds at most int.MaxValue bytes).</summary>
    public const int MaxInts = int.MaxValue / sizeof(int);

    /// <summary>Frees the buffers (the caller has synchronized the stream).</summary>
    public void Dispose()
    {
        _copied?.Dispose();
        _staging?.Dispose();
        _device?.Dispose();
        _copied = null;
        _staging = null;
        _device = null;
        _uploadedLength = -1;
    }
}
