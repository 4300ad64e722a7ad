using Tessera.Interop;
using Tessera.Interop.Kernels;
using Tessera.Model;

namespace Tessera.Backends.Cuda;

/// <summary>
/// The decode step of one sequence (one token through the model, logits back) as a CUDA graph: captured once and
/// replayed per token, so a step costs one graph launch instead of hundreds of kernel launches. The step must use the
/// same buffers every time, which a <see cref="RunState"/> guarantees; the position changes, so the kernels of the
/// graph read the step's layout (position, KV slot, attention tile over the sequence's whole block table) from the
/// graph's own device buffer, refilled before each replay.
/// The embedding runs outside the graph, before it (its token id comes from the host).
/// <see cref="Step"/> is <c>model.Forward(state, [token])</c>: the first step runs as usual (it loads every kernel
/// module, which must not happen during a capture), the second is captured, the rest replay it. Each replayed op is
/// checked against the captured one, so a step that would differ fails instead of replaying stale work.
/// </summary>
public sealed class CudaDecodeGraph : IDisposable
{
    private readonly LlamaModel _model;
    private readonly RunState _state;
    private readonly CudaBackend _backend;
    private int _steps;

    /// <summary>A decode graph for <paramref name="state"/> of <paramref name="model"/>, which runs on the CUDA backend.</summary>
    /// <exception cref="ArgumentException">The model is not on the CUDA backend.</exception>
    public CudaDecodeGraph(LlamaModel model, RunState state)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        _backend = model.Backend as CudaBackend
            ?? throw new ArgumentException($"a CUDA decode graph needs the model on the CUDA backend, not '{model.Backend.Name}'", nameof(model));
        _model = model;
        _state = state;
        Layout = new CudaRaggedBatch(_backend.Context, _backend.Stream);
    }

    /// <summary>Whether decode graphs are enabled in this process (<c>TESSERA_CUDA_GRAPH=0</c> turns them off, to
    /// compare with the launch-per-op path).</summary>
    public static bool Enabled => Environment.GetEnvironmentVariable("TESSERA_CUDA_GRAPH") != "0";

    /// <summary>Whether the graph has been captured (after the second step).</summary>
    public bool Captured => Graph is not null;

    /// <summary>Runs <paramref name="token"/> at <c>state.Position</c>; afterwards <c>state.Logits</c> holds its logits,
    /// exactly as <see cref="LlamaModel.Forward(RunState, ReadOnlySpan{int}, Span{float})"/> with one token.</summary>
    public void Step(int token)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Span<int> one = [token];
        if (_steps++ == 0)
        {
            _model.Forward(_state, one);
            return;
        }
        if (_state.Position >= _state.ContextSize)
            throw new InvalidOperationException($"context is full: {_state.Position} + 1 tokens exceed the context of {_state.ContextSize}");
        int position = _state.Position;
        _backend.BeginGraphStep(this);
        try
        {
            _model.Forward(_state, one);
        }
        catch
        {
            // Only the embedding ran (captured work does not run; a mismatched replay skipped its ops): the
            // sequence is still at its old position.
            _state.Rewind(position);
            throw;
        }
        finally
        {
            _backend.EndGraphStep();
        }
    }

    /// <summary>Frees the graph.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _backend.Synchronize();  // a replay may still be reading the layout
        Graph?.Dispose();
        Graph = null;
        Layout.Dispose();
        _disposed = true;
    }

    private bool _disposed;

    // State shared with CudaBackend during a step.
    internal CudaRaggedBatch Layout { get; }
    internal CudaGraph? Graph { get; set; }
    internal List<ulong> Signatures { get; } = [];
    internal ulong ReadSignature { get; set; }
    internal int Index { get; set; }
}
