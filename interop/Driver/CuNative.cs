using System.Runtime.InteropServices;

namespace Tessera.Interop.Driver;

/// <summary>
/// The CUDA driver API functions Tessera uses, bound with source-generated <c>LibraryImport</c> (no runtime
/// marshalling stubs, so NativeAOT- and trim-safe). Handles are <c>nint</c>, device pointers <c>ulong</c>
/// (CUdeviceptr is 64-bit on every supported platform), CUresult is <c>int</c>. Call through <see cref="Cu"/>,
/// which checks every result; nothing here checks anything.
/// </summary>
internal static unsafe partial class CuNative
{
    /// <summary>The logical library name; <see cref="CudaLibrary"/> resolves it to libcuda.so.1 or nvcuda.dll.</summary>
    internal const string Lib = "tessera-cuda-driver";

    // The resolver must be registered before the first call binds; an explicit static constructor runs before any
    // static method of this class.
    static CuNative() => CudaLibrary.RegisterResolver();

    [LibraryImport(Lib)] internal static partial int cuInit(uint flags);
    [LibraryImport(Lib)] internal static partial int cuDriverGetVersion(int* version);
    [LibraryImport(Lib)] internal static partial int cuDeviceGetCount(int* count);
    [LibraryImport(Lib)] internal static partial int cuDeviceGet(int* device, int ordinal);
    [LibraryImport(Lib)] internal static partial int cuDeviceGetName(byte* name, int len, int device);
    [LibraryImport(Lib)] internal static partial int cuDeviceGetAttribute(int* value, int attribute, int device);
    [LibraryImport(Lib)] internal static partial int cuDeviceTotalMem_v2(nuint* bytes, int device);
    [LibraryImport(Lib)] internal static partial int cuDevicePrimaryCtxRetain(nint* context, int device);
    [LibraryImport(Lib)] internal static partial int cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(Lib)] internal static partial int cuCtxSetCurrent(nint context);

    [LibraryImport(Lib)] internal static partial int cuModuleLoadDataEx(nint* module, void* image, uint numOptions, int* options, void** optionValues);
    [LibraryImport(Lib)] internal static partial int cuModuleUnload(nint module);
    [LibraryImport(Lib)] internal static partial int cuModuleGetFunction(nint* function, nint module, byte* name);
    [LibraryImport(Lib)] internal static partial int cuFuncGetAttribute(int* value, int attribute, nint function);
    [LibraryImport(Lib)] internal static partial int cuFuncSetAttribute(nint function, int attribute, int value);
    [LibraryImport(Lib)] internal static partial int cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ, uint sharedMemBytes, nint stream, void** kernelParams, void** extra);

    [LibraryImport(Lib)] internal static partial int cuMemAlloc_v2(ulong* dptr, nuint bytes);
    [LibraryImport(Lib)] internal static partial int cuMemFree_v2(ulong dptr);
    [LibraryImport(Lib)] internal static partial int cuMemAllocHost_v2(void** pointer, nuint bytes);
    [LibraryImport(Lib)] internal static partial int cuMemFreeHost(void* pointer);
    [LibraryImport(Lib)] internal static partial int cuMemcpyHtoDAsync_v2(ulong dst, void* src, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial int cuMemcpyDtoHAsync_v2(void* dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial int cuMemcpyDtoDAsync_v2(ulong dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial int cuMemsetD8Async(ulong dst, byte value, nuint count, nint stream);

    [LibraryImport(Lib)] internal static partial int cuStreamCreate(nint* stream, uint flags);
    [LibraryImport(Lib)] internal static partial int cuStreamDestroy_v2(nint stream);
    [LibraryImport(Lib)] internal static partial int cuStreamSynchronize(nint stream);
    [LibraryImport(Lib)] internal static partial int cuEventCreate(nint* evt, uint flags);
    [LibraryImport(Lib)] internal static partial int cuEventRecord(nint evt, nint stream);
    [LibraryImport(Lib)] internal static partial int cuEventSynchronize(nint evt);
    [LibraryImport(Lib)] internal static partial int cuEventElapsedTime(float* milliseconds, nint start, nint end);
    [LibraryImport(Lib)] internal static partial int cuEventDestroy_v2(nint evt);

    [LibraryImport(Lib)] internal static partial int cuStreamBeginCapture_v2(nint stream, int mode);
    [LibraryImport(Lib)] internal static partial int cuStreamEndCapture(nint stream, nint* graph);
    [LibraryImport(Lib)] internal static partial int cuGraphInstantiateWithFlags(nint* graphExec, nint graph, ulong flags);
    [LibraryImport(Lib)] internal static partial int cuGraphLaunch(nint graphExec, nint stream);
    [LibraryImport(Lib)] internal static partial int cuGraphExecDestroy(nint graphExec);
    [LibraryImport(Lib)] internal static partial int cuGraphDestroy(nint graph);

    [LibraryImport(Lib)] internal static partial int cuGetErrorName(int error, byte** name);
    [LibraryImport(Lib)] internal static partial int cuGetErrorString(int error, byte** text);
}
