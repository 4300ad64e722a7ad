using System.Diagnostics;
using System.Numerics.Tensors;
using Tessera.Backends;
using Tessera.Backends.Cuda;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Quantization;

namespace Tessera.Benchmarking;

/// <summary>Where a benchmark run is: a stage name and how many of its steps are done.</summary>
/// <param name="Stage">What runs now, e.g. <c>pp512</c>.</param>
/// <param name="Done">Steps of this stage done.</param>
/// <param name="Total">Steps of this stage in all.</param>
public readonly record struct BenchProgress(string Stage, int Done, int Total);

/// <summary>
/// Runs llama-bench's tests on the CPU or CUDA backend: pp (a prompt of N random token ids into an empty cache, timed) and tg
/// (from an empty cache, one token, then M single-token steps, each fed the argmax of the last logits), each repeated
/// after an untimed warm-up, plus load time, time to first token, peak memory and decode bandwidth against the
/// machine's measured read bandwidth.
/// </summary>
public static class BenchRunner
{
    // llama-bench's default micro-batch: a longer prompt runs in chunks of this many tokens.
    private const int MaxBatch = 512;

    /// <summary>Loads <paramref name="modelPath"/> and runs the tests of <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentException">An option is out of range for the model.</exception>
    /// <exception cref="Formats.ModelFormatException">The model cannot be loaded.</exception>
    public static BenchReport Run(string modelPath, BenchOptions options, IProgress<BenchProgress>? progress = null)
    {
        options.Validate();
        int previousThreads = QuantizedMatMul.MaxThreads;
        try
        {
            return RunLoaded(modelPath, options, progress);
        }
        finally
        {
            // --threads is process-wide; leave the process as it was for whatever runs next (tests run in-process).
            QuantizedMatMul.MaxThreads = previousThreads;
        }
    }

    private static BenchReport RunLoaded(string modelPath, BenchOptions options, IProgress<BenchProgress>? progress)
    {
        // The backend first and outside the load time: a missing GPU fails before the model is read.
        using var backend = BackendFactory.Create(options.Backend, options.Threads);
        var cuda = backend as CudaBackend;
        progress?.Report(new("loading", 0, 1));
        long t0 = Stopwatch.GetTimestamp();
        var results = new List<BenchResult>();
        double? ttft = null;
        double loadMs;
        ModelSummary summary;
        using (var m = LoadedModel.Load(modelPath, backend))
        {
            loadMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            progress?.Report(new("loading", 1, 1));
            var c = m.Config;
            options.ValidateFor(c.ContextLength, modelPath);
            summary = ModelSummary.Of(m.Weights, c);
            int maxPrompt = options.PromptLengths.Count > 0 ? options.PromptLengths.Max() : 1;
            int context = Math.Max(maxPrompt, Math.Max(options.GenerateTokens, 1));
            using var state = m.Model.CreateState(context, Math.Min(maxPrompt, MaxBatch));
            var rng = new Random(options.Seed);
            var tokens = new int[maxPrompt];
            for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.Next(c.VocabSize);

            foreach (int n in options.PromptLengths)
            {
                var (tps, firstToken) = Prompt(m.Model, state, tokens.AsSpan(0, n), options.Repetitions, progress);
                ttft ??= firstToken;
                results.Add(new BenchResult
                {
                    Test = $"pp{n}", PromptTokens = n, GeneratedTokens = 0, Repetitions = options.Repetitions,
                    TokensPerSecond = Spread.Of(tps),
                });
            }
            if (options.GenerateTokens > 0)
            {
                int g = options.GenerateTokens;
                var tps = Generate(m.Model, state, tokens[0], g, options.Repetitions, progress);
                results.Add(new BenchResult
                {
                    Test = $"tg{g}", PromptTokens = 0, GeneratedTokens = g, Repetitions = options.Repetitions,
                    TokensPerSecond = Spread.Of(tps), BytesPerToken = summary.DecodeBytesPerToken(c, g),
                });
            }
        }
        // Before the bandwidth buffer is allocated, so that the peak is the model's.
        long peak = MachineInfo.PeakResidentBytes();
        progress?.Report(new("memory bandwidth", 0, 1));
        // Decode streams the weights from wherever they live: host memory on the CPU, device memory on a GPU.
        double machine = cuda is null
            ? MemoryBandwidth.Measure(options.EffectiveThreads, options.BandwidthBufferBytes)
            : cuda.MeasureCopyBandwidthGBps(options.BandwidthBufferBytes);
        progress?.Report(new("memory bandwidth", 1, 1));
        return new BenchReport
        {
            ModelPath = modelPath,
            Backend = backend.Name,
            Device = cuda is null ? null : $"{cuda.Context.Name}, compute capability {cuda.Context.ComputeCapability.Major}.{cuda.Context.ComputeCapability.Minor}"
                + (cuda.Context.IsEmulator ? " (timings are the CPU emulator's, not a GPU's)" : ""),
            ModelType = summary.Description,
            ModelBytes = summary.Bytes,
            ModelParameters = summary.Parameters,
            Threads = options.EffectiveThreads,
            LoadMs = loadMs,
            TimeToFirstTokenMs = ttft,
            PeakResidentBytes = peak,
            MachineBandwidthGBps = machine,
            Machine = MachineInfo.Describe(),
            Date = DateTimeOffset.UtcNow,
            Results = results,
        };
    }

    /// <summary>pp: tokens/s of each timed run, and the median time to first token (prefill + argmax) in ms. On CUDA
    /// the argmax runs on the device, as generation does it: the logits never cross to the host.</summary>
    private static (List<double> Tps, double TtftMs) Prompt(LlamaModel model, RunState state, ReadOnlySpan<int> prompt,
        int repetitions, IProgress<BenchProgress>? progress)
    {
        var cuda = model.Backend as CudaBackend;
        state.LogitsStayOnDevice = cuda is not null && DeviceSampling.Enabled;
        try
        {
            string stage = $"pp{prompt.Length}";
            var tps = new List<double>(repetitions);
            var ttft = new List<double>(repetitions);
            progress?.Report(new(stage, 0, repetitions + 1));
            for (var warm = new WarmUp(); warm.Next();)
            {
                state.Rewind(0);
                model.Forward(state, prompt);
            }
            for (int rep = 0; rep < repetitions; rep++)
            {
                progress?.Report(new(stage, rep + 1, repetitions + 1));
                state.Rewind(0);
                long t0 = Stopwatch.GetTimestamp();
                model.Forward(state, prompt);
                long t1 = Stopwatch.GetTimestamp();
                int first = state.LogitsStayOnDevice ? DeviceSampling.Greedy(cuda!, state) : TensorPrimitives.IndexOfMax<float>(state.Logits);
                long t2 = Stopwatch.GetTimestamp();
                GC.KeepAlive(first);
                tps.Add(prompt.Length / Stopwatch.GetElapsedTime(t0, t1).TotalSeconds);
                ttft.Add(Stopwatch.GetElapsedTime(t0, t2).TotalMilliseconds);
            }
            progress?.Report(new(stage, repetitions + 1, repetitions + 1));
            return (tps, Spread.Of(ttft).Median);
        }
        finally
        {
            state.LogitsStayOnDevice = false;
        }
    }

    /// <summary>tg: tokens/s of each timed run of <paramref name="count"/> single-token steps from an empty cache.</summary>
    private static List<double> Generate(LlamaModel model, RunState state, int firstToken, int count, int repetitions,
        IProgress<BenchProgress>? progress)
    {
        string stage = $"tg{count}";
        var tps = new List<double>(repetitions);
        var token = new int[1];
        // On CUDA the step is a captured graph (one launch per token), as generation would run it.
        using var graph = model.Backend is CudaBackend && CudaDecodeGraph.Enabled ? new CudaDecodeGraph(model, state) : null;
        progress?.Report(new(stage, 0, repetitions + 1));
        for (var warm = new WarmUp(); warm.Next();) Steps(model, state, graph, token, firstToken, count);
        for (int rep = 0; rep < repetitions; rep++)
        {
            progress?.Report(new(stage, rep + 1, repetitions + 1));
            long t0 = Stopwatch.GetTimestamp();
            Steps(model, state, graph, token, firstToken, count);
            tps.Add(count / Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        progress?.Report(new(stage, repetitions + 1, repetitions + 1));
        return tps;
    }

    /// <summary><paramref name="count"/> greedy single-token steps from an empty cache. On CUDA the argmax runs on the
    /// device, as generation does it (<see cref="DeviceSampling"/>): only the token id crosses to the host.</summary>
    private static void Steps(LlamaModel model, RunState state, CudaDecodeGraph? graph, int[] token, int firstToken, int count)
    {
        state.Rewind(0);
        token[0] = firstToken;
        var cuda = model.Backend as CudaBackend;
        state.LogitsStayOnDevice = cuda is not null && DeviceSampling.Enabled;
        try
        {
            for (int i = 0; i < count; i++)
            {
                if (graph is null) model.Forward(state, token);
                else graph.Step(token[0]);
                token[0] = state.LogitsStayOnDevice ? DeviceSampling.Greedy(cuda!, state) : TensorPrimitives.IndexOfMax<float>(state.Logits);
            }
        }
        finally
        {
            state.LogitsStayOnDevice = false;
        }
    }

    /// <summary>
    /// Untimed runs before the timed ones: they page the weights in and start the thread pool, and they give .NET's
    /// tiered JIT time to replace the kernels' first code (quickly compiled, then instrumented for profile-guided
    /// optimization) with the final optimized code, which it does in the background over the first seconds. One
    /// warm-up run was not enough: successive 128-token prefills of the stories110m shape (Q4_K_M) ran at 110, 290,
    /// 490, 540, 590 and then 550–690 tok/s, so a median of runs 2–4 understated prefill by a quarter. Hence at least
    /// two runs and three seconds, at most twenty runs. (llama-bench does one warm-up run; its code is compiled ahead
    /// of time.)
    /// </summary>
    private struct WarmUp
    {
        private long _start;
        private int _runs;

        /// <summary>Whether to do another warm-up run.</summary>
        public bool Next()
        {
            if (_runs == 0) _start = Stopwatch.GetTimestamp();
            bool more = _runs < 2 || (_runs < 20 && Stopwatch.GetElapsedTime(_start).TotalSeconds < 3);
            _runs++;
            return more;
        }
    }
}
