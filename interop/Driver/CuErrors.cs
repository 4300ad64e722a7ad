using System.Runtime.InteropServices;

namespace Tessera.Interop.Driver;

/// <summary>
/// CUresult names and descriptions: from the driver (cuGetErrorName/cuGetErrorString) when it is loaded, otherwise
/// from this table of the codes Tessera can meet, so that a message is readable even when the driver is missing or
/// too broken to describe its own errors.
/// </summary>
internal static unsafe class CuErrors
{
    private static readonly Dictionary<int, (string Name, string Text)> Known = new()
    {
        [0] = ("CUDA_SUCCESS", "no errors"),
        [1] = ("CUDA_ERROR_INVALID_VALUE", "invalid argument"),
        [2] = ("CUDA_ERROR_OUT_OF_MEMORY", "out of memory"),
        [3] = ("CUDA_ERROR_NOT_INITIALIZED", "initialization error"),
        [4] = ("CUDA_ERROR_DEINITIALIZED", "driver shutting down"),
        [34] = ("CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"),
        [46] = ("CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"),
        [100] = ("CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"),
        [101] = ("CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"),
        [200] = ("CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"),
        [201] = ("CUDA_ERROR_INVALID_CONTEXT", "invalid device context"),
        [209] = ("CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"),
        [218] = ("CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"),
        [222] = ("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain."),
        [400] = ("CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"),
        [500] = ("CUDA_ERROR_NOT_FOUND", "named symbol not found"),
        [600] = ("CUDA_ERROR_NOT_READY", "device not ready"),
        [700] = ("CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"),
        [701] = ("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"),
        [702] = ("CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"),
        [719] = ("CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"),
        [803] = ("CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"),
        [900] = ("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"),
        [901] = ("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"),
        [999] = ("CUDA_ERROR_UNKNOWN", "unknown error"),
    };

    /// <summary>The CUresult's name, e.g. CUDA_ERROR_OUT_OF_MEMORY.</summary>
    internal static string Name(int code) =>
        FromDriver(code, name: true) ?? (Known.TryGetValue(code, out var k) ? k.Name : $"CUresult {code}");

    /// <summary>The driver's description of the CUresult.</summary>
    internal static string Text(int code) =>
        FromDriver(code, name: false) ?? (Known.TryGetValue(code, out var k) ? k.Text : "unrecognized error code");

    // Asks the driver only when it is already loaded: describing an error must never itself fail.
    private static string? FromDriver(int code, bool name)
    {
        if (!CudaLibrary.TryLoad(out _, out _)) return null;
        try
        {
            byte* s = null;
            int r = name ? CuNative.cuGetErrorName(code, &s) : CuNative.cuGetErrorString(code, &s);
            return r == 0 && s != null ? Marshal.PtrToStringUTF8((nint)s) : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }
}
