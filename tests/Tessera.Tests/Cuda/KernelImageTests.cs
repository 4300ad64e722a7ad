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

    [TestCase("gemm", "gemm_f16", "gemm_bf16", "gemm_q8_0", "gemm_q4_0", "gemm_q4_k", "gemm_q6_k")]
    [TestCase("flash_attention", "flash_attention_f16")]
    [TestCase("sample_topk", "sample_topk_f32")]
    [TestCase("gemv", "gemv_f32", "gemv_f16", "gemv_bf16", "gemv_q8_0", "gemv_q4_0", "gemv_q4_k", "gemv_q6_k")]
    public void The_entry_points_the_launchers_look_up_exist(string file, params string[] entries)
    {
        // The driver finds functions by name at run time; a renamed kernel would only fail on a GPU.
        if (!KernelImages.Built) Assert.Ignore(KernelImages.NotBuiltReason);
        foreach (int arch in new[] { 80, 90 })
        {
            string ptx = System.Text.Encoding.ASCII.GetString(KernelImages.Load($"{file}.sm{arch}.ptx")!);
            foreach (string e in entries) Assert.That(ptx, Does.Contain($".entry {e}("), $"{file}.sm{arch}.ptx lacks {e}");
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
