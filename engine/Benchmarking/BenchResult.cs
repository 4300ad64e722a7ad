namespace Tessera.Benchmarking;

/// <summary>The machine a benchmark ran on, for the record next to its figures.</summary>
/// <param name="CpuModel">CPU model name (Linux: <c>/proc/cpuinfo</c>'s "model name"), or the OS architecture elsewhere.</param>
/// <param name="Cores">Logical processors visible to the process.</param>
/// <param name="Os">Operating system description.</param>
public sealed record MachineDescription(string CpuModel, int Cores, string Os);

/// <summary>Median and spread of one figure over repetitions.</summary>
/// <param name="Median">The median.</param>
/// <param name="Min">The smallest sample.</param>
/// <param name="Max">The largest sample.</param>
/// <param name="StdDev">Sample standard deviation (0 for one sample).</param>
public sealed record Spread(double Median, double Min, double Max, double StdDev)
{
    /// <summary>Summarizes <paramref name="samples"/> (at least one).</summary>
    public static Spread Of(IReadOnlyList<double> samples)
    {
        if (samples.Count == 0) throw new ArgumentException("no samples", nameof(samples));
        var s = samples.Order().ToArray();
        int n = s.Length;
        double median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        double mean = s.Average();
        double var = n > 1 ? s.Sum(x => (x - mean) * (x - mean)) / (n - 1) : 0;
        return new Spread(median, s[0], s[^1], Math.Sqrt(var));
    }
}

/// <summary>One test's figures, named as llama-bench names its tests (<c>pp512</c>, <c>tg128</c>).</summary>
public sealed record BenchResult
{
    /// <summary>Test name: <c>pp</c> + prompt tokens or <c>tg</c> + generated tokens.</summary>
    public required string Test { get; init; }
    /// <summary>Prompt tokens processed per run (0 for tg).</summary>
    public required int PromptTokens { get; init; }
    /// <summary>Tokens generated per run (0 for pp).</summary>
    public required int GeneratedTokens { get; init; }
    /// <summary>Timed runs.</summary>
    public required int Repetitions { get; init; }
    /// <summary>Tokens per second over the timed runs.</summary>
    public required Spread TokensPerSecond { get; init; }
    /// <summary>For tg: bytes of weights and KV cache read per generated token at the average position; null for pp.</summary>
    public double? BytesPerToken { get; init; }
    /// <summary>For tg: <see cref="BytesPerToken"/> × median tokens/s, in GB/s (10⁹ bytes); null for pp.</summary>
    public double? BandwidthGBps => BytesPerToken * TokensPerSecond.Median / 1e9;
}

/// <summary>Everything one <c>tessera bench</c> run measured.</summary>
public sealed record BenchReport
{
    /// <summary>The model file or folder.</summary>
    public required string ModelPath { get; init; }
    /// <summary>llama-bench style description: architecture, parameter count, main weight type (e.g. <c>llama 1.2M Q8_0</c>).</summary>
    public required string ModelType { get; init; }
    /// <summary>Bytes of all weight tensors.</summary>
    public required long ModelBytes { get; init; }
    /// <summary>Number of weight parameters.</summary>
    public required long ModelParameters { get; init; }
    /// <summary>The backend: <c>cpu</c> or <c>cuda</c>.</summary>
    public string Backend { get; init; } = "cpu";
    /// <summary>The GPU for a device backend (name, compute capability); null on the CPU.</summary>
    public string? Device { get; init; }
    /// <summary>Threads the backend used.</summary>
    public required int Threads { get; init; }
    /// <summary>Milliseconds to load the model (map, parse, prepare).</summary>
    public required double LoadMs { get; init; }
    /// <summary>Time to first token in milliseconds: prefill of the first prompt length and the argmax of its logits
    /// (median over repetitions); null when there is no pp test.</summary>
    public double? TimeToFirstTokenMs { get; init; }
    /// <summary>Peak resident memory of the process, in bytes, at the end of the run.</summary>
    public required long PeakResidentBytes { get; init; }
    /// <summary>The bandwidth decode is measured against, GB/s (10⁹ bytes): on the CPU the machine's streaming read
    /// bandwidth with <see cref="Threads"/> threads; on a GPU the device-to-device copy bandwidth (bytes read plus
    /// bytes written per second).</summary>
    public required double MachineBandwidthGBps { get; init; }
    /// <summary>The machine.</summary>
    public required MachineDescription Machine { get; init; }
    /// <summary>When the run finished (UTC).</summary>
    public required DateTimeOffset Date { get; init; }
    /// <summary>One result per test, pp tests first.</summary>
    public required IReadOnlyList<BenchResult> Results { get; init; }

    /// <summary>A test's decode bandwidth as a fraction of <see cref="MachineBandwidthGBps"/>; null for pp.</summary>
    public double? BandwidthFraction(BenchResult r) => r.BandwidthGBps / MachineBandwidthGBps;
}
