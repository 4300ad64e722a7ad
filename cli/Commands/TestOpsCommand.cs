using System.CommandLine;
using System.Globalization;
using Tessera.Backends;
using Tessera.Backends.Cpu;
using Tessera.Backends.Cuda;
using Tessera.Backends.OpSuite;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera test-ops</c>: the op suite. The CPU backend is checked against each op's definition, the CUDA backend
/// against the CPU backend. Without a CUDA device the CUDA side says why and the CPU self-check still runs.
/// Exit code: 0 all run cases passed, 1 a case failed (or bad options), 3 the requested CUDA backend is unavailable.
/// </summary>
internal static class TestOpsCommand
{
    public static Command Create(CliIo io)
    {
        var backend = new Option<string>("--backend", "-b")
        {
            Description = "cpu, cuda, or all (default: all: the CPU, and CUDA when a device is present)",
            DefaultValueFactory = _ => "all",
        };
        backend.AcceptOnlyFromAmong("cpu", "cuda", "all");
        var op = new Option<string?>("--op") { Description = "only the cases of this op (embed, rmsnorm, rope, swiglu, add, add_bias, matmul, attention, attention_scores, sample_topk, topk_prune)" };
        var cmd = new Command("test-ops", "run the op test list on the CPU and CUDA backends") { backend, op };
        cmd.SetAction(r => io.Guard(() =>
        {
            string which = r.GetValue(backend)!;
            var cases = OpSuiteRunner.Select(r.GetValue(op));
            using var cpu = new CpuBackend();
            int failed = Run(io, cpu, cpu, cases);
            if (which == "cpu") return failed > 0 ? 1 : 0;
            using var cuda = CudaBackend.TryCreate(out string reason);
            if (cuda is null)
            {
                io.Out.WriteLine($"cuda: no CUDA device: {reason}");
                return failed > 0 ? 1 : which == "cuda" ? 3 : 0;
            }
            io.Out.WriteLine($"cuda: {cuda.Context.Name}, compute capability {cuda.Context.ComputeCapability.Major}.{cuda.Context.ComputeCapability.Minor}, driver {cuda.Context.DriverVersion}");
            failed += Run(io, cuda, cpu, cases);
            return failed > 0 ? 1 : 0;
        }));
        return cmd;
    }

    private static int Run(CliIo io, IBackend backend, CpuBackend cpu, IReadOnlyList<OpCase> cases)
    {
        int failed = 0;
        foreach (var c in cases)
        {
            var res = OpSuiteRunner.Run(c, backend, cpu);
            if (!res.Passed) failed++;
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{backend.Name,-5} {c.Name,-48} err {res.Error,9:E2} tol {c.Tolerance:E0} vs {res.Reference,-5} {res.Milliseconds,8:F2} ms  {(res.Passed ? "ok" : "FAIL: " + res.Detail)}"));
        }
        io.Out.WriteLine($"{backend.Name}: {cases.Count - failed}/{cases.Count} cases passed");
        return failed;
    }
}
