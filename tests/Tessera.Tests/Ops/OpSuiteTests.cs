using NUnit.Framework;
using Tessera.Backends.Cpu;
using Tessera.Backends.OpSuite;
using Tessera.Tests.Cli;
using Tessera.Tests.Cuda;

namespace Tessera.Tests.Ops;

/// <summary>The op list on every backend: the CPU against each op's definition, CUDA against the CPU (Ignored with
/// the reason where there is no CUDA device).</summary>
[Category("Cuda")]  // run a second time on the CUDA emulator by ./build.sh test
public class OpSuiteTests
{
    private static readonly CpuBackend Cpu = new();

    private static IEnumerable<TestCaseData> Cases() =>
        OpCases.All.Select(c => new TestCaseData(c).SetArgDisplayNames(c.Name));

    [TestCaseSource(nameof(Cases))]
    public void Cpu_matches_the_definition(OpCase c) => AssertPassed(OpSuiteRunner.Run(c, Cpu, Cpu));

    [TestCaseSource(nameof(Cases))]
    public void Cuda_matches_the_cpu(OpCase c) => AssertPassed(OpSuiteRunner.Run(c, CudaDevice.Require(), Cpu));

    private static void AssertPassed(OpResult r) =>
        Assert.That(r.Passed, Is.True, $"{r.Case.Name} vs {r.Reference}: {r.Detail}");

    [Test]
    public void Every_backend_op_has_cases()
    {
        var ops = OpCases.All.Select(c => c.Op).Distinct().ToList();
        Assert.That(ops, Is.EquivalentTo(new[] { "embed", "rmsnorm", "rope", "swiglu", "geglu", "soft_cap", "scale", "add", "add_bias", "matmul", "attention", "sample_topk", "topk_prune", "attention_scores" }));
        Assert.That(OpCases.All.Select(c => c.Name), Is.Unique);
    }

    [Test]
    public void Compare_fails_on_non_finite_output_before_measuring()
    {
        var (err, detail) = OpSuiteRunner.Compare([1f, float.NaN], [1f, 2f]);
        Assert.That(double.IsNaN(err));
        Assert.That(detail, Does.Contain("non-finite").And.Contain("index 1"));
        Assert.That(OpSuiteRunner.Compare([1f], [1f, 2f]).Detail, Does.Contain("1 values"));
        Assert.That(OpSuiteRunner.Compare([3f, 4f], [3f, 4f + 5e-3f]).Error, Is.EqualTo(1e-3).Within(1e-6));
    }

    [Test]
    public void A_wrong_result_fails_its_case()
    {
        // The suite must be able to fail: an op case whose backend output is off by 1% in one value.
        var good = OpCases.All.First(c => c.Op == "add");
        var bad = good with { Run = b => { var r = good.Run(b); r[0] *= 1.5f; return r; } };
        var res = OpSuiteRunner.Run(bad, Cpu, Cpu);
        Assert.That(res.Passed, Is.False);
        Assert.That(res.Detail, Does.Contain("exceeds"));
    }

    [Test]
    public void Cli_runs_the_cpu_cases_of_one_op()
    {
        var r = CliRunner.Run("test-ops", "--backend", "cpu", "--op", "rope");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err + r.Out);
        Assert.That(r.Out, Does.Contain("cpu: 14/14 cases passed"));  // 6 contiguous, 6 with scaled angles, 2 ragged
        Assert.That(r.Out, Does.Not.Contain("FAIL"));
    }

    [Test]
    public void Cli_rejects_an_unknown_op()
    {
        var r = CliRunner.Run("test-ops", "--op", "conv2d");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("--op").And.Contain("conv2d").And.Contain("matmul"));
    }

    [Test]
    public void Cli_cuda_says_why_there_is_no_device()
    {
        var r = CliRunner.Run("test-ops", "--backend", "cuda", "--op", "add");
        if (r.Out.Contains("no CUDA device:"))
        {
            Assert.That(r.ExitCode, Is.EqualTo(3), "an explicitly requested but unavailable CUDA backend is exit code 3");
            Assert.That(r.Out, Does.Contain("cpu: 2/2 cases passed"), "the CPU self-check still runs");
        }
        else
        {
            Assert.That(r.ExitCode, Is.EqualTo(0), r.Out);
            Assert.That(r.Out, Does.Contain("cuda: 2/2 cases passed"));
        }
    }
}
