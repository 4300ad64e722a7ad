using System.Reflection;

namespace Tessera.Backends.Cuda;

/// <summary>
/// The PTX images embedded in this assembly by the build (resources <c>Tessera.Kernels.FILE.smARCH.ptx</c>; see
/// engine/Tessera.Engine.csproj). None are present when the build had no CUDA compiler.
/// </summary>
internal static class KernelImages
{
    private const string Prefix = "Tessera.Kernels.";
    private static readonly Assembly Self = typeof(KernelImages).Assembly;

    /// <summary>Image names, e.g. <c>gemv.sm90.ptx</c>.</summary>
    public static IReadOnlyList<string> Names { get; } =
        [.. Self.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)).Select(n => n[Prefix.Length..]).Order(StringComparer.Ordinal)];

    /// <summary>Whether the build embedded any kernels.</summary>
    public static bool Built => Names.Count > 0;

    /// <summary>Why there are no kernels (empty when there are).</summary>
    public static string NotBuiltReason => Built ? "" :
        "the CUDA kernels were not built into this assembly (no nvcc at build time; run ./build.sh kernels on a machine with nvcc, then rebuild)";

    /// <summary>The PTX bytes of <paramref name="name"/>, or null when it is not embedded.</summary>
    public static byte[]? Load(string name)
    {
        using var s = Self.GetManifestResourceStream(Prefix + name);
        if (s is null) return null;
        var bytes = new byte[s.Length];
        s.ReadExactly(bytes);
        return bytes;
    }
}
