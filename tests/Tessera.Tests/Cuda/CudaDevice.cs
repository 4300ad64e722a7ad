using NUnit.Framework;
using Tessera.Backends.Cuda;

namespace Tessera.Tests.Cuda;

/// <summary>One CUDA backend for the whole test run, or the reason there is none (tests needing it are Ignored).</summary>
internal static class CudaDevice
{
    private static readonly Lazy<(CudaBackend? Backend, string Reason)> Shared = new(() =>
    {
        var b = CudaBackend.TryCreate(out var reason);
        return (b, reason);
    });

    /// <summary>Why there is no device; calls Assert.Ignore when there is one (for tests of the no-device error path).</summary>
    public static string RequireAbsent()
    {
        var (b, reason) = Shared.Value;
        if (b is not null) Assert.Ignore("a CUDA device is present: the no-device error path cannot be exercised here");
        return reason;
    }

    /// <summary>The backend on a real GPU; Ignored on the CPU emulator too, for tests of what only hardware has
    /// (registers, local memory, timings).</summary>
    public static CudaBackend RequireHardware()
    {
        var b = Require();
        if (b.Context.IsEmulator) Assert.Ignore("the CUDA device is the CPU emulator: this checks a property of real hardware");
        return b;
    }

    /// <summary>The backend; calls Assert.Ignore("no CUDA device: …") when there is none.</summary>
    public static CudaBackend Require()
    {
        var (b, reason) = Shared.Value;
        if (b is null) Assert.Ignore($"no CUDA device: {reason}");
        return b!;
    }
}
