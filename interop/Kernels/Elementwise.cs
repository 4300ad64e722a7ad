namespace Tessera.Interop.Kernels;

/// <summary>Shared launch geometry for one-thread-per-element kernels.</summary>
internal static class Elementwise
{
    internal const uint Threads = 256;

    internal static uint Blocks(long n) => (uint)((n + Threads - 1) / Threads);

    internal static void RequirePositive(long n, string kernel, string argument)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(argument, n, $"kernel '{kernel}': {argument} must be positive");
    }
}
