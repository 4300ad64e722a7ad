using Tessera.Backends.Cpu;
using Tessera.Backends.Cuda;

namespace Tessera.Backends;

/// <summary>A backend that was asked for by name but cannot start here (e.g. CUDA without a device); the message
/// says which and why, e.g. <c>cuda: no CUDA device: cuInit failed: CUDA_ERROR_NO_DEVICE (100)</c>.</summary>
public sealed class BackendUnavailableException(string message) : Exception(message);

/// <summary>Backends by the names the command line uses (<c>--backend cpu|cuda</c>).</summary>
public static class BackendFactory
{
    /// <summary>The names <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["cpu", "cuda"];

    /// <summary>A new backend: <c>cpu</c> (with <paramref name="threads"/>, 0 = all cores) or <c>cuda</c> (device 0).</summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="Names"/>.</exception>
    /// <exception cref="BackendUnavailableException">The CUDA backend cannot start; the message gives the reason.</exception>
    public static IBackend Create(string name, int threads = 0) => name switch
    {
        "cpu" => new CpuBackend(threads),
        "cuda" => CudaBackend.TryCreate(out string reason) ?? throw new BackendUnavailableException($"cuda: no CUDA device: {reason}"),
        _ => throw new ArgumentException($"--backend '{name}': unknown backend (known: {string.Join(", ", Names)})", nameof(name)),
    };
}
