using System.Runtime.InteropServices;
using Tessera.Interop.Driver;

namespace Tessera.Interop;

/// <summary>
/// One CUDA device and its primary context (the context the runtime API would share), made current on the
/// creating thread. Holds the device attributes the launchers need.
/// </summary>
public sealed unsafe class CudaContext : IDisposable
{
    private nint _context;

    private CudaContext(int device, nint context)
    {
        Device = device;
        _context = context;
        byte* name = stackalloc byte[256];
        Cu.Check(CuNative.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        name[255] = 0;  // the driver NUL-terminates; this guards a name that fills the buffer
        Name = Marshal.PtrToStringUTF8((nint)name) ?? "";
        int v;
        Cu.Check(CuNative.cuDriverGetVersion(&v), "cuDriverGetVersion");
        DriverVersion = v;
        SmCount = Attribute(DeviceAttribute.MultiprocessorCount);
        SharedMemoryPerBlock = Attribute(DeviceAttribute.MaxSharedMemoryPerBlock);
        SharedMemoryPerBlockOptin = Attribute(DeviceAttribute.MaxSharedMemoryPerBlockOptin);
        ComputeCapability = (Attribute(DeviceAttribute.ComputeCapabilityMajor), Attribute(DeviceAttribute.ComputeCapabilityMinor));
        nuint total;
        Cu.Check(CuNative.cuDeviceTotalMem_v2(&total, device), "cuDeviceTotalMem_v2");
        TotalMemory = (long)total;
    }

    /// <summary>The device ordinal.</summary>
    public int Device { get; }

    /// <summary>The device's name, e.g. <c>NVIDIA H100 80GB HBM3</c>.</summary>
    public string Name { get; }

    /// <summary>The device name the CPU emulator (kernels/emu, loaded through <c>TESSERA_LIBCUDA</c>) reports.</summary>
    public const string EmulatorName = "Tessera CUDA emulator (CPU)";

    /// <summary>Whether this "device" is the CPU emulator: results are checked as on a GPU, but timings, registers
    /// and other properties of real hardware mean nothing.</summary>
    public bool IsEmulator => Name == EmulatorName;

    /// <summary>The driver's CUDA version as major * 1000 + minor * 10.</summary>
    public int DriverVersion { get; }

    /// <summary>Number of streaming multiprocessors.</summary>
    public int SmCount { get; }

    /// <summary>Shared memory a block may use without opting in (bytes).</summary>
    public int SharedMemoryPerBlock { get; }

    /// <summary>Shared memory a block may use after <see cref="CudaFunction.SetMaxDynamicSharedMemory"/> (bytes).</summary>
    public int SharedMemoryPerBlockOptin { get; }

    /// <summary>Compute capability (major, minor), e.g. (9, 0) for H100.</summary>
    public (int Major, int Minor) ComputeCapability { get; }

    /// <summary>Device memory in bytes.</summary>
    public long TotalMemory { get; }

    internal nint Handle => _context != 0 ? _context : throw new ObjectDisposedException(nameof(CudaContext));

    /// <summary>Any device attribute (CUdevice_attribute).</summary>
    public int Attribute(DeviceAttribute attribute)
    {
        int v;
        Cu.Check(CuNative.cuDeviceGetAttribute(&v, (int)attribute, Device), "cuDeviceGetAttribute");
        return v;
    }

    /// <summary>Makes this context current on the calling thread (needed on threads other than the creating one).</summary>
    public void MakeCurrent() => Cu.Check(CuNative.cuCtxSetCurrent(Handle), "cuCtxSetCurrent");

    /// <summary>Opens device <paramref name="ordinal"/>; throws <see cref="CudaException"/> or
    /// <see cref="InvalidOperationException"/> with the reason when there is no driver or device.</summary>
    public static CudaContext Create(int ordinal = 0) =>
        TryCreate(out var reason, ordinal) ?? throw new InvalidOperationException($"no CUDA device: {reason}");

    /// <summary>Opens device <paramref name="ordinal"/>, or returns null with <paramref name="reason"/> saying why
    /// (no driver library, no device, initialization failed). Never throws for an absent driver.</summary>
    public static CudaContext? TryCreate(out string reason, int ordinal = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        if (!CudaLibrary.TryLoad(out _, out reason)) return null;
        try
        {
            int r = CuNative.cuInit(0);
            if (r != 0) { reason = CudaException.Format("cuInit", r, null); return null; }
            int count;
            Cu.Check(CuNative.cuDeviceGetCount(&count), "cuDeviceGetCount");
            if (count == 0) { reason = "the CUDA driver reports no devices"; return null; }
            if (ordinal >= count) { reason = $"device {ordinal} requested but the driver reports {count}"; return null; }
            int device;
            Cu.Check(CuNative.cuDeviceGet(&device, ordinal), "cuDeviceGet");
            nint ctx;
            Cu.Check(CuNative.cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain");
            try
            {
                Cu.Check(CuNative.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
                reason = "";
                return new CudaContext(device, ctx);
            }
            catch
            {
                Cu.Ignore(CuNative.cuDevicePrimaryCtxRelease_v2(device));
                throw;
            }
        }
        catch (Exception e) when (e is CudaException or EntryPointNotFoundException or DllNotFoundException)
        {
            reason = e.Message;
            return null;
        }
    }

    /// <summary>Releases the primary context (the driver destroys it when the last user releases it).</summary>
    public void Dispose()
    {
        if (_context == 0) return;
        _context = 0;
        Cu.Ignore(CuNative.cuDevicePrimaryCtxRelease_v2(Device));
    }
}

/// <summary>The CUdevice_attribute values Tessera reads.</summary>
public enum DeviceAttribute
{
    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK.</summary>
    MaxThreadsPerBlock = 1,
    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK.</summary>
    MaxSharedMemoryPerBlock = 8,
    /// <summary>CU_DEVICE_ATTRIBUTE_WARP_SIZE.</summary>
    WarpSize = 10,
    /// <summary>CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT.</summary>
    MultiprocessorCount = 16,
    /// <summary>CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE (kHz).</summary>
    MemoryClockRate = 36,
    /// <summary>CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH (bits).</summary>
    GlobalMemoryBusWidth = 37,
    /// <summary>CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE (bytes).</summary>
    L2CacheSize = 38,
    /// <summary>CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR.</summary>
    ComputeCapabilityMajor = 75,
    /// <summary>CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR.</summary>
    ComputeCapabilityMinor = 76,
    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN.</summary>
    MaxSharedMemoryPerBlockOptin = 97,
}
