using Tessera.Interop.Driver;

namespace Tessera.Interop;

/// <summary>A non-blocking CUDA stream: kernels and copies on it run in order, apart from the legacy default stream.</summary>
public sealed unsafe class CudaStream : IDisposable
{
    private nint _stream;

    /// <summary>Creates a stream in <paramref name="context"/> (which must be current on this thread).</summary>
    public CudaStream(CudaContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        nint s;
        Cu.Check(CuNative.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate");
        _stream = s;
    }

    internal nint Handle => _stream != 0 ? _stream : throw new ObjectDisposedException(nameof(CudaStream));

    /// <summary>Waits until everything queued on the stream has finished; a kernel fault surfaces here.</summary>
    public void Synchronize() => Cu.Check(CuNative.cuStreamSynchronize(Handle), "cuStreamSynchronize");

    /// <summary>Starts recording the stream's work into a graph instead of running it (thread-local capture mode).</summary>
    public void BeginCapture() => Cu.Check(CuNative.cuStreamBeginCapture_v2(Handle, 1 /* THREAD_LOCAL */), "cuStreamBeginCapture_v2");

    /// <summary>Ends the capture started by <see cref="BeginCapture"/> and instantiates the recorded work.</summary>
    public CudaGraph EndCapture()
    {
        nint g;
        Cu.Check(CuNative.cuStreamEndCapture(Handle, &g), "cuStreamEndCapture");
        return new CudaGraph(g);
    }

    /// <summary>Destroys the stream (queued work still completes).</summary>
    public void Dispose()
    {
        if (_stream == 0) return;
        Cu.Ignore(CuNative.cuStreamDestroy_v2(_stream));
        _stream = 0;
    }
}
