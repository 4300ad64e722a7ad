using Tessera.Interop.Driver;

namespace Tessera.Interop;

/// <summary>Work captured from a stream (<see cref="CudaStream.EndCapture"/>), instantiated once and replayed with
/// <see cref="Launch"/>: one driver call per decode step instead of one per kernel.</summary>
public sealed unsafe class CudaGraph : IDisposable
{
    private nint _graph;
    private nint _exec;

    internal CudaGraph(nint graph)
    {
        _graph = graph;
        try
        {
            nint exec;
            Cu.Check(CuNative.cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags");
            _exec = exec;
        }
        catch
        {
            Cu.Ignore(CuNative.cuGraphDestroy(graph));
            _graph = 0;
            throw;
        }
    }

    /// <summary>Replays the captured work on <paramref name="stream"/>.</summary>
    public void Launch(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ObjectDisposedException.ThrowIf(_exec == 0, this);
        Cu.Check(CuNative.cuGraphLaunch(_exec, stream.Handle), "cuGraphLaunch");
    }

    /// <summary>Destroys the executable graph and the graph.</summary>
    public void Dispose()
    {
        if (_exec != 0) Cu.Ignore(CuNative.cuGraphExecDestroy(_exec));
        if (_graph != 0) Cu.Ignore(CuNative.cuGraphDestroy(_graph));
        _exec = _graph = 0;
    }
}
