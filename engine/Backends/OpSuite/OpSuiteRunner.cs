using System.Diagnostics;
using Tessera.Backends.Cpu;

namespace Tessera.Backends.OpSuite;

/// <summary>Runs the op list on a backend: the CPU backend against each op's definition, any other backend against
/// the CPU backend. A non-finite output fails before any error is computed.</summary>
public static class OpSuiteRunner
{
    /// <summary>The cases whose op is <paramref name="op"/> (all when null); throws naming the known ops when none match.</summary>
    public static IReadOnlyList<OpCase> Select(string? op)
    {
        if (op is null) return OpCases.All;
        var list = OpCases.All.Where(c => c.Op.Equals(op, StringComparison.OrdinalIgnoreCase)).ToList();
        if (list.Count == 0)
            throw new ArgumentException($"--op: unknown op '{op}' (known: {string.Join(", ", OpCases.All.Select(c => c.Op).Distinct())})");
        return list;
    }

    /// <summary>Runs one case on <paramref name="backend"/>; <paramref name="cpu"/> is the reference for non-CPU backends.</summary>
    public static OpResult Run(OpCase c, IBackend backend, CpuBackend cpu)
    {
        bool isCpu = backend is CpuBackend;
        float[] reference = isCpu ? c.Naive() : c.Run(cpu);
        var sw = Stopwatch.StartNew();
        float[] output = c.Run(backend);
        double ms = sw.Elapsed.TotalMilliseconds;
        string refName = isCpu ? "naive" : "cpu";
        var (error, detail) = Compare(output, reference);
        bool passed = detail.Length == 0 && error <= c.Tolerance;
        if (detail.Length == 0 && !passed) detail = $"normalized error {error:E2} exceeds {c.Tolerance:E0}";
        return new OpResult(c, refName, error, passed, detail, ms);
    }

    /// <summary>‖a − b‖ / ‖b‖ (‖a − b‖ when b is zero), after checking lengths and that a is finite.</summary>
    internal static (double Error, string Detail) Compare(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) return (double.NaN, $"output has {a.Length} values, reference {b.Length}");
        for (int i = 0; i < a.Length; i++)
            if (!float.IsFinite(a[i])) return (double.NaN, $"non-finite output {a[i]} at index {i}");
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - b[i];
            num += d * d;
            den += (double)b[i] * b[i];
        }
        return (den > 0 ? Math.Sqrt(num / den) : Math.Sqrt(num), "");
    }
}
