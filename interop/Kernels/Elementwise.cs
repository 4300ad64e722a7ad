namespace Tessera.Interop.Kernels;

/// <summary>Shared launch geometry for one-thread-per-element kernels.</summary>
internal static class Elementwise
{
    internal const uint Threads = 256;

    internal static uint Blocks(long n) => (uint)((n + Threads - 1) / Threads);

    /// <summary>Launches an in-place kernel (x, a, n) of one float argument a, which must be finite and non-zero (the
    /// scale and soft-cap kernels).</summary>
    internal static unsafe void LaunchInPlace(CudaFunction f, string kernel, CudaStream stream, DeviceSpan<float> x, float a, string argument, int count)
    {
        RequirePositive(count, kernel, nameof(count));
        x.RequireLength(count, kernel, nameof(x));
        if (!float.IsFinite(a) || a == 0) throw new ArgumentOutOfRangeException(argument, a, $"kernel '{kernel}': {argument} must be finite and non-zero");
        ulong p = x.Pointer;
        int n = count;
        void** args = stackalloc void*[] { &p, &a, &n };
        f.Launch(LaunchShape.Linear(Blocks(n), Threads), stream, args);
    }

    internal static void RequirePositive(long n, string kernel, string argument)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(argument, n, $"kernel '{kernel}': {argument} must be positive");
    }
}
