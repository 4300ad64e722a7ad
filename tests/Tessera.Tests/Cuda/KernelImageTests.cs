using NUnit.Framework;
using Tessera.Backends.Cuda;

namespace Tessera.Tests.Cuda;

/// <summary>The build embeds PTX for every kernel file and both architectures, or none at all.</summary>
public class KernelImageTests
{
    [Test]
    public void Every_kernel_file_has_ptx_for_sm80_and_sm90()
    {
        if (!KernelImages.Built) Assert.Ignore(KernelImages.NotBuiltReason);
        string kernels = Path.Combine(RepoRoot(), "kernels");
        var files = Directory.GetFiles(kernels, "*.cu").Select(Path.GetFileNameWithoutExtension).ToList();
        Assert.That(files, Is.Not.Empty);
        foreach (var f in files)
            foreach (int arch in new[] { 80, 90 })
            {
                var ptx = KernelImages.Load($"{f}.sm{arch}.ptx");
                Assert.That(ptx, Is.Not.Null, $"{f}.sm{arch}.ptx is not embedded");
                Assert.That(System.Text.Encoding.ASCII.GetString(ptx!), Does.Contain($".target sm_{arch}"));
            }
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln"))) return d.FullName;
        throw new AssertionException("repository root (Engine.sln) not found above " + AppContext.BaseDirectory);
    }

    [Test]
    public void Missing_image_is_null() => Assert.That(KernelImages.Load("nope.sm80.ptx"), Is.Null);
}
