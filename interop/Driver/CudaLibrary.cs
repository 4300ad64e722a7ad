using System.Reflection;
using System.Runtime.InteropServices;

namespace Tessera.Interop.Driver;

/// <summary>
/// Finds the CUDA driver library: <c>libcuda.so.1</c> then <c>libcuda.so</c> on Linux (the unversioned name exists
/// only with the development package), <c>nvcuda.dll</c> on Windows. <c>TESSERA_LIBCUDA</c> may name a file to use
/// instead. The driver ships with the NVIDIA kernel driver, never with the application.
/// </summary>
internal static class CudaLibrary
{
    private static readonly Lock Gate = new();
    private static bool _registered;
    private static bool _probed;
    private static nint _handle;
    private static string _reason = "";

    /// <summary>The file names tried, in order, on this platform.</summary>
    internal static string[] Candidates()
    {
        var env = Environment.GetEnvironmentVariable("TESSERA_LIBCUDA");
        string[] system = OperatingSystem.IsWindows() ? ["nvcuda.dll"]
            : OperatingSystem.IsLinux() ? ["libcuda.so.1", "libcuda.so"]
            : [];
        return string.IsNullOrEmpty(env) ? system : [env, .. system];
    }

    /// <summary>Loads the driver library once; false with a reason naming what was tried when it is absent.</summary>
    internal static bool TryLoad(out nint handle, out string reason)
    {
        lock (Gate)
        {
            if (!_probed)
            {
                _probed = true;
                _handle = Probe(Candidates(), out _reason);
            }
            handle = _handle;
            reason = _reason;
            return _handle != 0;
        }
    }

    /// <summary>Loads the first of <paramref name="tried"/> that loads; 0 with a reason naming them all when none does.</summary>
    internal static nint Probe(string[] tried, out string reason)
    {
        foreach (var name in tried)
            if (NativeLibrary.TryLoad(name, out var h)) { reason = ""; return h; }
        reason = tried.Length == 0 ? $"the CUDA driver is not supported on {RuntimeInformation.OSDescription}"
            : $"the CUDA driver library was not found (tried {string.Join(", ", tried)}); is the NVIDIA driver installed?";
        return 0;
    }

    /// <summary>Points <see cref="CuNative.Lib"/> at the loaded driver. Called once, from CuNative's static constructor.</summary>
    internal static void RegisterResolver()
    {
        lock (Gate)
        {
            if (_registered) return;
            _registered = true;
            NativeLibrary.SetDllImportResolver(typeof(CudaLibrary).Assembly, Resolve);
        }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != CuNative.Lib) return 0;
        if (TryLoad(out var handle, out var reason)) return handle;
        throw new DllNotFoundException(reason);
    }
}
