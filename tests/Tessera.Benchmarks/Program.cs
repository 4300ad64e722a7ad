using BenchmarkDotNet.Running;

// Every benchmark here reports its throughput (GB/s of data read, GFLOP/s) in extra columns; see ThroughputColumn.
BenchmarkSwitcher.FromAssembly(typeof(Tessera.Benchmarks.ThroughputConfig).Assembly).Run(args, new Tessera.Benchmarks.ThroughputConfig());
