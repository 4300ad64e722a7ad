using NUnit.Framework;
using Tessera.Interop;
using Tessera.Interop.Driver;

namespace Tessera.Tests.Cuda;

/// <summary>The driver binding on any machine: library lookup, the absent-driver path, error messages.</summary>
public class CudaDriverTests
{
    [Test]
    public void Probe_of_missing_libraries_names_every_candidate()
    {
        nint h = CudaLibrary.Probe(["/nonexistent/libcuda.so.1", "/nonexistent/libcuda.so"], out var reason);
        Assert.That(h, Is.EqualTo((nint)0));
        Assert.That(reason, Does.Contain("/nonexistent/libcuda.so.1").And.Contain("/nonexistent/libcuda.so").And.Contain("not found"));
    }

    [Test]
    public void Candidates_follow_the_platform_and_the_override()
    {
        string? old = Environment.GetEnvironmentVariable("TESSERA_LIBCUDA");
        try
        {
            Environment.SetEnvironmentVariable("TESSERA_LIBCUDA", null);
            var plain = CudaLibrary.Candidates();
            if (OperatingSystem.IsLinux()) Assert.That(plain, Is.EqualTo(new[] { "libcuda.so.1", "libcuda.so" }));
            if (OperatingSystem.IsWindows()) Assert.That(plain, Is.EqualTo(new[] { "nvcuda.dll" }));
            Environment.SetEnvironmentVariable("TESSERA_LIBCUDA", "/opt/x/libcuda.so.1");
            Assert.That(CudaLibrary.Candidates()[0], Is.EqualTo("/opt/x/libcuda.so.1"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("TESSERA_LIBCUDA", old);
        }
    }

    [Test]
    public void TryCreate_never_throws_and_explains_a_missing_device()
    {
        using var ctx = CudaContext.TryCreate(out var reason);
        if (ctx is null)
        {
            Assert.That(reason, Is.Not.Empty);
            Assert.Throws<InvalidOperationException>(() => CudaContext.Create(), "Create throws where TryCreate returns null");
        }
        else
        {
            Assert.That(reason, Is.Empty);
            Assert.That(ctx.SmCount, Is.GreaterThan(0));
            Assert.That(ctx.TotalMemory, Is.GreaterThan(0));
            Assert.That(ctx.SharedMemoryPerBlockOptin, Is.GreaterThanOrEqualTo(ctx.SharedMemoryPerBlock));
            Assert.That(ctx.Name, Is.Not.Empty);
        }
    }

    [Test]
    public void TryCreate_rejects_a_negative_ordinal() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaContext.TryCreate(out _, -1));

    [Test]
    public void Exception_names_the_call_the_error_and_its_text()
    {
        var e = new CudaException("cuMemAlloc_v2", 2);
        Assert.That(e.Message, Does.StartWith("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory"));
        Assert.That(e.ErrorName, Is.EqualTo("CUDA_ERROR_OUT_OF_MEMORY"));
        Assert.That(e.Code, Is.EqualTo(2));
        Assert.That(e.Call, Is.EqualTo("cuMemAlloc_v2"));
        Assert.That(new CudaException("cuInit", 100).Message, Does.Contain("CUDA_ERROR_NO_DEVICE (100)"));
        Assert.That(new CudaException("cuModuleLoadDataEx", 218, "line 3: syntax error").Message,
            Does.Contain("CUDA_ERROR_INVALID_PTX").And.EndWith("\nline 3: syntax error"));
    }

    [Test]
    public void Exception_for_an_unknown_code_keeps_the_number() =>
        Assert.That(new CudaException("cuLaunchKernel", 123456).Message, Does.Contain("CUresult 123456"));
}
