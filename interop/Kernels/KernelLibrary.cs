namespace Tessera.Interop.Kernels;

/// <summary>
/// The kernel modules of one context, loaded from PTX images named <c>FILE.smARCH.ptx</c> (FILE = the kernel's .cu
/// file). The PTX for compute_90 is used on compute capability 9.x and above, compute_80 otherwise; the driver
/// JIT-compiles it for the actual GPU. Modules load on first use.
/// </summary>
public sealed class KernelLibrary : IDisposable
{
    private readonly Func<string, byte[]?> _images;
    private readonly Dictionary<string, CudaModule> _modules = [];

    /// <summary>Uses <paramref name="images"/> (image name → PTX bytes, null when absent) for <paramref name="context"/>.</summary>
    public KernelLibrary(CudaContext context, Func<string, byte[]?> images)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(images);
        Context = context;
        _images = images;
        Arch = ArchFor(context.ComputeCapability);
    }

    /// <summary>The context the modules are loaded into.</summary>
    public CudaContext Context { get; }

    /// <summary>The PTX architecture used, 80 or 90.</summary>
    public int Arch { get; }

    /// <summary>The PTX architecture for a device; throws below compute capability 8.0 (no PTX is built for those).</summary>
    internal static int ArchFor((int Major, int Minor) cc)
    {
        if (cc.Major < 8)
            throw new NotSupportedException($"the CUDA kernels need compute capability 8.0 or newer; this device is {cc.Major}.{cc.Minor}");
        return cc.Major >= 9 ? 90 : 80;
    }

    /// <summary>The image name of a kernel file, e.g. <c>gemv.sm90.ptx</c>.</summary>
    internal static string ImageName(string file, int arch) => $"{file}.sm{arch}.ptx";

    /// <summary>The loaded module of kernel file <paramref name="file"/> (e.g. <c>gemv</c>).</summary>
    public CudaModule Module(string file)
    {
        if (_modules.TryGetValue(file, out var m)) return m;
        string name = ImageName(file, Arch);
        var ptx = _images(name) ?? throw new InvalidOperationException(
            $"no PTX image '{name}': the CUDA kernels were not built into this assembly (run ./build.sh with nvcc available)");
        m = new CudaModule(Context, ptx, name);
        _modules[file] = m;
        return m;
    }

    /// <summary>Unloads every module.</summary>
    public void Dispose()
    {
        foreach (var m in _modules.Values) m.Dispose();
        _modules.Clear();
    }
}
