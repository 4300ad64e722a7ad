using Tessera.Interop.Driver;

namespace Tessera.Interop;

/// <summary>A timing event: record two on a stream and read the milliseconds between them.</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    private nint _event;

    /// <summary>Creates an event in the current context.</summary>
    public CudaEvent(CudaContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        nint e;
        Cu.Check(CuNative.cuEventCreate(&e, 0 /* CU_EVENT_DEFAULT: timing enabled */), "cuEventCreate");
        _event = e;
    }

    internal nint Handle => _event != 0 ? _event : throw new ObjectDisposedException(nameof(CudaEvent));

    /// <summary>Records the event at the current end of <paramref name="stream"/>.</summary>
    public void Record(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Cu.Check(CuNative.cuEventRecord(Handle, stream.Handle), "cuEventRecord");
    }

    /// <summary>Waits until the event has completed.</summary>
    public void Synchronize() => Cu.Check(CuNative.cuEventSynchronize(Handle), "cuEventSynchronize");

    /// <summary>Milliseconds from <paramref name="start"/> to this event (both recorded; waits for this one).</summary>
    public float ElapsedSince(CudaEvent start)
    {
        ArgumentNullException.ThrowIfNull(start);
        Synchronize();
        float ms;
        Cu.Check(CuNative.cuEventElapsedTime(&ms, start.Handle, Handle), "cuEventElapsedTime");
        return ms;
    }

    /// <summary>Destroys the event.</summary>
    public void Dispose()
    {
        if (_event == 0) return;
        Cu.Ignore(CuNative.cuEventDestroy_v2(_event));
        _event = 0;
    }
}
