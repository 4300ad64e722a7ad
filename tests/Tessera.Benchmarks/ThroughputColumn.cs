using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Tessera.Benchmarks;

/// <summary>What one benchmark operation moves and computes, so that time becomes GB/s and GFLOP/s.</summary>
public interface IWorkload
{
    /// <summary>Bytes the operation must read (weights, cache, inputs) and write.</summary>
    double BytesPerOperation { get; }
    /// <summary>Floating-point (or integer multiply-add) operations, a multiply-add counting 2.</summary>
    double FlopsPerOperation { get; }
}

/// <summary>Adds the GB/s and GFLOP/s columns to BenchmarkDotNet's defaults.</summary>
public sealed class ThroughputConfig : ManualConfig
{
    /// <summary>The default config plus the throughput columns.</summary>
    public ThroughputConfig()
    {
        Add(DefaultConfig.Instance);
        AddColumn(new ThroughputColumn("GB/s", w => w.BytesPerOperation), new ThroughputColumn("GFLOP/s", w => w.FlopsPerOperation));
    }
}

/// <summary>amount per operation / mean time per operation. The amount comes from a fresh instance of the benchmark class
/// with the case's parameters set, so that each class states its own workload next to its code.</summary>
public sealed class ThroughputColumn(string name, Func<IWorkload, double> amount) : IColumn
{
    /// <inheritdoc/>
    public string Id => "Throughput." + name;
    /// <inheritdoc/>
    public string ColumnName => name;
    /// <inheritdoc/>
    public bool AlwaysShow => true;
    /// <inheritdoc/>
    public ColumnCategory Category => ColumnCategory.Custom;
    /// <inheritdoc/>
    public int PriorityInCategory => 0;
    /// <inheritdoc/>
    public bool IsNumeric => true;
    /// <inheritdoc/>
    public UnitType UnitType => UnitType.Dimensionless;
    /// <inheritdoc/>
    public string Legend => $"{name}: work per operation / mean time per operation";
    /// <inheritdoc/>
    public bool IsAvailable(Summary summary) => true;
    /// <inheritdoc/>
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    /// <inheritdoc/>
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc/>
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats == null || Activator.CreateInstance(benchmarkCase.Descriptor.Type) is not IWorkload w) return "-";
        foreach (var p in benchmarkCase.Parameters.Items)
            benchmarkCase.Descriptor.Type.GetProperty(p.Name)?.SetValue(w, p.Value);
        double perNs = amount(w) / stats.Mean; // units per ns = G units per s
        return perNs.ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
    }
}
