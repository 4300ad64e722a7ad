namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/kv_append.cu: k and v rounded to F16 into the cache.</summary>
public sealed unsafe class KvAppend(KernelLibrary library)
{
    private readonly CudaFunction _f = library.Module("kv_append").Function("kv_append_f16");

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> k, DeviceSpan<float> v, DeviceSpan<Half> kCache, DeviceSpan<Half> vCache, int count)
    {
        const string K = "kv_append_f16";
        Elementwise.RequirePositive(count, K, nameof(count));
        k.RequireLength(count, K, nameof(k));
        v.RequireLength(count, K, nameof(v));
        kCache.RequireLength(count, K, nameof(kCache));
        vCache.RequireLength(count, K, nameof(vCache));
    }

    /// <summary>kCache[i] = (half)k[i], vCache[i] = (half)v[i] for i below <paramref name="count"/> (rows × kv_dim);
    /// the cache views start at the first position written.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> k, DeviceSpan<float> v, DeviceSpan<Half> kCache, DeviceSpan<Half> vCache, int count)
    {
        Check(k, v, kCache, vCache, count);
        ulong a = k.Pointer, b = v.Pointer, c = kCache.Pointer, d = vCache.Pointer;
        int n = count;
        void** args = stackalloc void*[] { &a, &b, &c, &d, &n };
        _f.Launch(LaunchShape.Linear(Elementwise.Blocks(n), Elementwise.Threads), stream, args);
    }
}
