using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;
using Tessera.Benchmarking;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera bench</c>: llama-bench's pp/tg tests on the CPU or CUDA backend, as a table and as JSON for tools.</summary>
internal static class BenchCommand
{
    public static Command Create(CliIo io)
    {
        var model = CommonOptions.Model();
        var prompts = new Option<string>("--prompt-lengths", "-p") { Description = "prompt lengths for pp tests, comma-separated", DefaultValueFactory = _ => "512" };
        var gen = new Option<int>("--gen", "-n") { Description = "tokens to generate in the tg test (0 = none)", DefaultValueFactory = _ => 128 };
        var threads = new Option<int>("--threads", "-t") { Description = "CPU threads (0 = all cores)" };
        var reps = new Option<int>("--repetitions", "-r") { Description = "timed runs per test, after untimed warm-up runs (at least 2 and 3 s)", DefaultValueFactory = _ => 5 };
        var json = new Option<string>("--json") { Description = "write the results as a JSON array to FILE ('-' = stdout, instead of the table)" };
        var compare = new Option<string>("--compare") { Description = "print new/old tokens/s ratios against an earlier --json FILE" };
        var backend = CommonOptions.Backend();
        var concurrency = new Option<string>("--concurrency") { Description = "instead of pp/tg: serving throughput with this many concurrent requests, comma-separated (e.g. 1,4,16,64); prompt length from -p (first value), tokens per request from -n" };
        var speculation = new CommonOptions.Speculation();
        var constraint = new CommonOptions.Constraint();
        var exactBytes = new Option<int>("--exact-bytes") { Description = "with --token-healing: also complete the first N cut words byte by byte from exact next-byte probabilities (Phan et al.)", DefaultValueFactory = _ => 0 };
        var healing = new Option<bool>("--token-healing") { Description = "instead of pp/tg: how often token healing completes words cut in half in --prompt-file's text (greedy, against plain continuation)" };
        var cautious = new Option<bool>("--cautious") { Description = "instead of pp/tg: Cautious NTP against plain sampling at temperature 1, stories scored by the F32 model beside -m (or -m itself): perplexity and forward passes per token; -r stories of -n tokens" };
        var promptFile = new Option<string?>("--prompt-file") { Description = "with --speculate: prompts of real text, one per non-empty line; default: random token ids" };
        var kvBench = new Option<string?>("--kv-budget-bench")
        {
            Description = "instead of pp/tg: decode tokens/s and KV size after a -p prompt with the full cache, with the attention score sums on, and with each policy given (comma-separated: window,h2o,keyformer,snapkv) at 25/50/100% of the prompt; -r rounds",
        };
        var pruning = new CommonOptions.PrefillPruning();
        var cmd = new Command("bench", "measure prompt processing (pp) and generation (tg) speed, like llama-bench")
            { model, prompts, gen, threads, reps, json, compare, backend, concurrency, promptFile, healing, exactBytes, cautious, kvBench };
        speculation.AddTo(cmd);
        constraint.AddTo(cmd);
        pruning.AddTo(cmd);
        cmd.SetAction(r => io.Guard(() =>
        {
            if (pruning.Read(r) is { } prune)
            {
                using var b = Tessera.Backends.BackendFactory.Create(r.GetValue(backend)!);
                using var lm = Tessera.Model.LoadedModel.Load(r.GetValue(model)!, b);
                var lengths = ParseLengths(r.GetValue(prompts) ?? "");
                var machine = MachineInfo.Describe();
                var sched = string.Join(", ", prune.Schedule(lm.Config.Layers).Select(x => FormattableString.Invariant($"layer {x.Layer}: {100 * x.Keep:F0}%")));
                io.Out.WriteLine($"{Path.GetFileName(r.GetValue(model)!)} ({lm.Config.Layers} layers): time to first token, full prompt against --prefill-pruning {Tessera.Pruning.PrefillPruningOptions.NameOf(prune.Method)} --keep {prune.Keep.ToString(System.Globalization.CultureInfo.InvariantCulture)} ({sched}); {r.GetValue(reps)} alternating rounds; {machine.CpuModel}; {b.Name}");
                io.Out.WriteLine("| prompt | full ms (median, range) | pruned ms (median, range) | speedup (median, range) | row-layers computed |");
                io.Out.WriteLine("|---|---|---|---|---|");
                foreach (var x in PruningBench.Run(lm.Model, lengths, prune, r.GetValue(reps)))
                    io.Out.WriteLine(FormattableString.Invariant(
                        $"| {x.PromptTokens} | {x.FullMilliseconds.Median:F1} ({x.FullMilliseconds.Min:F1}–{x.FullMilliseconds.Max:F1}) | {x.PrunedMilliseconds.Median:F1} ({x.PrunedMilliseconds.Min:F1}–{x.PrunedMilliseconds.Max:F1}) | {x.Speedup.Median:F2} ({x.Speedup.Min:F2}–{x.Speedup.Max:F2}) | {100 * x.ComputedShare:F1}% |"));
                return 0;
            }
            if (r.GetValue(cautious))
            {
                string modelPath = r.GetValue(model)!;
                using var lm = Tessera.Model.LoadedModel.Load(modelPath);
                string f32 = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, "tinystories-656k-f32.gguf");
                using var scorer = Tessera.Model.LoadedModel.Load(File.Exists(f32) ? f32 : modelPath);
                var sampling = new Tessera.Sampling.SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0 };
                var machine = MachineInfo.Describe();
                var c = Tessera.Evaluation.CautiousEval.Run(lm, scorer, "Once upon a time", sampling, r.GetValue(gen), r.GetValue(reps), new Tessera.Generation.CautiousOptions());
                io.Out.WriteLine($"{Path.GetFileName(modelPath)}, scored by {Path.GetFileName(File.Exists(f32) ? f32 : modelPath)}; {c.Stories} stories of {r.GetValue(gen)} tokens at temperature 1 after \"Once upon a time\"; {machine.CpuModel}");
                io.Out.WriteLine(FormattableString.Invariant($"mean perplexity: plain {c.PlainPerplexity:F3}, cautious {c.CautiousPerplexity:F3} (ratio {c.CautiousPerplexity / c.PlainPerplexity:F3})"));
                io.Out.WriteLine(FormattableString.Invariant($"forward passes per token: plain 1, cautious {c.CautiousPassesPerToken:F2}; trials per token {c.TrialsPerToken:F2}"));
                return 0;
            }
            if (r.GetValue(kvBench) is { } policyList)
            {
                var policies = policyList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Tessera.Kv.KvBudgetOptions.ParsePolicy).ToArray();
                using var b = Tessera.Backends.BackendFactory.Create(r.GetValue(backend)!);
                using var lm = Tessera.Model.LoadedModel.Load(r.GetValue(model)!, b);
                int p = ParseLengths(r.GetValue(prompts) ?? "")[0];
                var machine = MachineInfo.Describe();
                io.Out.WriteLine($"{Path.GetFileName(r.GetValue(model)!)}: prompt {p} random tokens, then {r.GetValue(gen)} greedy tokens; {r.GetValue(reps)} alternating rounds; {machine.CpuModel}; {b.Name}");
                var rows = KvBudgetBench.Run(lm.Model, p, r.GetValue(gen), r.GetValue(reps), policies, msg => io.Err.Write("\r" + msg + "        "));
                io.Err.WriteLine();
                io.Out.WriteLine("| config | decode tok/s (median, range) | ratio to full (median, range) | prefill ms | positions per decode step | peak KV |");
                io.Out.WriteLine("|---|---|---|---|---|---|");
                foreach (var x in rows)
                    io.Out.WriteLine(FormattableString.Invariant(
                        $"| {x.Label} | {x.TokensPerSecond.Median:F1} ({x.TokensPerSecond.Min:F1}–{x.TokensPerSecond.Max:F1}) | {x.RatioToFull.Median:F3} ({x.RatioToFull.Min:F3}–{x.RatioToFull.Max:F3}) | {x.PrefillMilliseconds.Median:F1} | {x.DecodePositions} | {x.PeakPositions * x.BytesPerPosition / 1048576.0:F1} MiB |"));
                return 0;
            }
            if (r.GetValue(healing))
            {
                string file = r.GetValue(promptFile) ?? throw new ArgumentException("--token-healing: give the text to cut with --prompt-file FILE");
                if (!File.Exists(file)) throw new ArgumentException($"--prompt-file {file}: no such file");
                using var lm = Tessera.Model.LoadedModel.Load(r.GetValue(model)!);
                var machine = MachineInfo.Describe();
                var h = Tessera.Evaluation.TokenHealingEval.Run(lm, File.ReadAllText(file), exactLimit: r.GetValue(exactBytes));
                io.Out.WriteLine($"{Path.GetFileName(r.GetValue(model)!)} on {Path.GetFileName(file)}; {machine.CpuModel}");
                io.Out.WriteLine(FormattableString.Invariant($"words cut in half: {h.Prompts}; the greedy continuation completes the word: plain {h.Plain} ({100.0 * h.Plain / h.Prompts:F1}%), token healing {h.Healed} ({100.0 * h.Healed / h.Prompts:F1}%)"));
                if (h.ExactPrompts > 0)
                    io.Out.WriteLine(FormattableString.Invariant($"exact next-byte probabilities on the first {h.ExactPrompts} cuts: complete the word {h.Exact} ({100.0 * h.Exact / h.ExactPrompts:F1}%), against plain {h.ExactPlain} ({100.0 * h.ExactPlain / h.ExactPrompts:F1}%) and token healing {h.ExactHealed} ({100.0 * h.ExactHealed / h.ExactPrompts:F1}%) on the same cuts; {h.ExactPassesPerByte:F1} model passes per next-byte distribution"));
                io.Out.WriteLine(FormattableString.Invariant($"words cut after their last letter: {h.BoundaryPrompts}; healing changed the next 8 characters in {h.BoundaryChanged} ({100.0 * h.BoundaryChanged / h.BoundaryPrompts:F1}%); the continuation is the text's next word: plain {h.BoundaryPlainNext} ({100.0 * h.BoundaryPlainNext / h.BoundaryPrompts:F1}%), healed {h.BoundaryHealedNext} ({100.0 * h.BoundaryHealedNext / h.BoundaryPrompts:F1}%)"));
                return 0;
            }
            if (constraint.Read(r) is { } grammar)
                return Constrained(io, r.GetValue(model)!, grammar, r.GetValue(gen), r.GetValue(reps));
            if (speculation.Read(r) is { } spec)
                return Speculation(io, r.GetValue(model)!, spec, speculation, r.GetValue(promptFile), r.GetValue(gen), r.GetValue(reps), r.GetValue(backend)!, r.GetValue(threads));
            if (r.GetValue(concurrency) is { } levels)
            {
                return Serving(io, r.GetValue(model)!, ParseLengths(levels, "--concurrency"),
                    ParseLengths(r.GetValue(prompts) ?? "", "--prompt-lengths")[0], r.GetValue(gen), r.GetValue(backend)!, r.GetValue(threads));
            }
            var options = new BenchOptions
            {
                PromptLengths = ParseLengths(r.GetValue(prompts) ?? ""),
                GenerateTokens = r.GetValue(gen),
                Threads = r.GetValue(threads),
                Repetitions = r.GetValue(reps),
                Backend = r.GetValue(backend)!,
            };
            options.Validate();
            string path = r.GetValue(model)!;
            string? jsonPath = r.GetValue(json);
            string? comparePath = r.GetValue(compare);
            bool jsonToStdout = jsonPath == "-";
            // Read the old file first, so that a bad --compare fails before minutes of benchmarking.
            if (comparePath != null) BenchJson.ReadTokensPerSecond(comparePath);

            var report = RunWithProgress(io, path, options, showProgress: !jsonToStdout && Interactive(io));
            if (jsonPath != null)
            {
                if (jsonToStdout)
                {
                    using var ms = new MemoryStream();
                    BenchJson.Write(report, ms);
                    io.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
                }
                else
                {
                    using var f = File.Create(jsonPath);
                    BenchJson.Write(report, f);
                }
            }
            var console = ConsoleFor(io.Out, ReferenceEquals(io.Out, Console.Out) && !Console.IsOutputRedirected);
            var table = new BenchTable(console);
            if (!jsonToStdout) table.Show(report);
            if (comparePath != null)
            {
                // With JSON on stdout the ratios go to stderr, so that stdout stays one JSON document.
                var target = jsonToStdout ? ConsoleFor(io.Err, false) : console;
                new BenchTable(target).ShowComparison(BenchJson.Compare(report, comparePath), comparePath);
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>"64,512" → [64, 512]; names the option and the bad item otherwise.</summary>
    internal static int[] ParseLengths(string text, string option = "--prompt-lengths")
    {
        var items = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (items.Length == 0) throw new ArgumentException($"{option} '{text}': give one or more numbers, e.g. 64,512");
        var result = new int[items.Length];
        for (int i = 0; i < items.Length; i++)
            if (!int.TryParse(items[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out result[i]))
                throw new ArgumentException($"{option} '{text}': '{items[i]}' is not a whole number");
        return result;
    }

    /// <summary><c>--concurrency</c>: the serving benchmark, as a plain table.</summary>
    private static int Serving(CliIo io, string path, int[] levels, int prompt, int gen, string backendName, int threads)
    {
        // The backend first: a missing GPU is reported (exit code 3) before the model is read. --threads reaches
        // the CPU backend (0 = all cores).
        using var backend = Tessera.Backends.BackendFactory.Create(backendName, threads);
        var results = ServingBench.Run(path, levels, prompt, gen, msg => io.Err.WriteLine(msg), backend);
        var m = MachineInfo.Describe();
        string device = backend is Tessera.Backends.Cuda.CudaBackend cuda
            ? $"cuda ({cuda.Context.Name}{(cuda.Context.IsEmulator ? ": timings are the CPU emulator's, not a GPU's" : "")}); host " : "cpu; ";
        io.Out.WriteLine($"model {Path.GetFileName(path)}, prompt {prompt} tokens, {gen} generated per request; backend {device}{m.CpuModel}, {m.Cores} cores, {m.Os}");
        io.Out.WriteLine("| concurrent | aggregate tok/s | decode tok/s | TTFT mean (s) | TTFT max (s) | wall (s) |");
        io.Out.WriteLine("|---:|---:|---:|---:|---:|---:|");
        foreach (var x in results)
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {x.Concurrency} | {x.AggregateTokensPerSecond:F1} | {x.DecodeTokensPerSecond:F1} | {x.MeanTimeToFirstToken.TotalSeconds:F2} | {x.MaxTimeToFirstToken.TotalSeconds:F2} | {x.Seconds:F1} |"));
        return 0;
    }

    /// <summary><c>--speculate</c>: the verify-cost curve, then plain against speculative decoding, as plain tables.</summary>
    /// <summary><c>bench --json-schema/--grammar/--regex/--json-object</c>: the sampler's time per token under the grammar,
    /// rejection sampling against a full mask per token, alternating rounds.</summary>
    private static int Constrained(CliIo io, string path, Tessera.Constraints.Grammar grammar, int gen, int rounds)
    {
        if (gen <= 0) throw new ArgumentException($"--gen {gen}: the constraint bench needs tokens to draw");
        var machine = MachineInfo.Describe();
        Tessera.Tokenization.Tokenizer tokenizer;
        Action<List<int>, float[]> logits;
        Tessera.Model.LoadedModel? m = null;
        Tessera.Model.RunState? state = null;
        int vocab;
        bool weights = !(path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".model", StringComparison.OrdinalIgnoreCase)
            || (File.Exists(path) && IsVocabOnly(path)));
        if (weights)
        {
            m = Tessera.Model.LoadedModel.Load(path);
            tokenizer = m.Tokenizer;
            vocab = m.Config.VocabSize;
            var prompt = tokenizer.Encode("Once upon a time", tokenizer.AddBosByDefault).ToArray();
            int ctx = Math.Min(m.Config.ContextLength, 512);
            state = m.Model.CreateState(ctx);
            var model = m.Model;
            var s = state;
            logits = (context, row) =>
            {
                if (context.Count == 0 || s.Position + 1 >= ctx) { s.Rewind(0); model.Forward(s, prompt); }
                else model.Forward(s, [context[^1]]);
                s.Logits.CopyTo(row);
            };
        }
        else
        {
            tokenizer = Tessera.Tokenization.Tokenizer.Load(path);
            vocab = tokenizer.Vocabulary.Count;
            logits = ConstraintBench.Gaussian();
        }
        using var owner = m;
        using var stateOwner = state;
        io.Out.WriteLine($"{Path.GetFileName(path)}: vocabulary {vocab}, logits {(weights ? "of the model after \"Once upon a time\"" : "seeded Gaussian (sd 3): a tokenizer, no weights")}, grammar {grammar.Source}");
        io.Out.WriteLine($"{machine.CpuModel}, {machine.Cores} cores; {rounds} rounds of {gen} tokens each, alternating; sampler time only");
        var results = ConstraintBench.Run(tokenizer, grammar, logits, vocab, gen, rounds);
        foreach (var g in results.GroupBy(x => x.Mode))
        {
            var us = g.Select(x => x.MicrosecondsPerToken).Order().ToArray();
            io.Out.WriteLine(FormattableString.Invariant($"  {g.Key,-10} {us[us.Length / 2],9:F1} us/token (min {us[0]:F1}, max {us[^1]:F1}), {g.Average(x => x.RejectionsPerToken):F2} rejections and {g.Average(x => x.MasksPerToken):F3} full masks per token"));
        }
        var ratios = results.Chunk(2).Select(p => p[1].MicrosecondsPerToken / p[0].MicrosecondsPerToken).Order().ToArray();
        io.Out.WriteLine(FormattableString.Invariant($"  full mask / rejection: {ratios[ratios.Length / 2]:F2} (min {ratios[0]:F2}, max {ratios[^1]:F2}) per round pair"));
        return 0;
    }

    private static bool IsVocabOnly(string path)
    {
        if (Directory.Exists(path)) return false;
        using var f = Tessera.Formats.Gguf.GgufFile.Open(path);
        return f.Tensors.Count == 0;
    }

    private static int Speculation(CliIo io, string path, Tessera.Speculation.SpeculationOptions spec, CommonOptions.Speculation options, string? promptFile, int gen,
        int rounds, string backendName, int threads)
    {
        if (gen <= 0) throw new ArgumentException($"--gen {gen}: --speculate needs tokens to generate");
        string[]? texts = null;
        if (promptFile is not null)
        {
            if (!File.Exists(promptFile)) throw new ArgumentException($"--prompt-file {promptFile}: no such file");
            texts = File.ReadAllLines(promptFile).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            if (texts.Length == 0) throw new ArgumentException($"--prompt-file {promptFile}: no text in it");
        }
        using var backend = Tessera.Backends.BackendFactory.Create(backendName, threads);
        using var m = Tessera.Model.LoadedModel.Load(path, backend);
        var (withDraft, draftModel) = options.LoadDraft(spec, m, backend);
        using var draftOwner = draftModel;
        spec = withDraft!;
        var rng = new Random(1234);
        IReadOnlyList<IReadOnlyList<int>> prompts = texts is null
            ? [.. Enumerable.Range(0, 4).Select(_ => (IReadOnlyList<int>)[.. Enumerable.Range(0, 64).Select(_ => rng.Next(m.Config.VocabSize))])]
            : [.. texts.Select(t => (IReadOnlyList<int>)m.Tokenizer.Encode(t, m.Tokenizer.AddBosByDefault))];
        int longest = prompts.Max(p => p.Count);
        if (longest + gen + 1 > m.Config.ContextLength)
            throw new ArgumentException($"a prompt of {longest} tokens and --gen {gen} do not fit the context of {m.Config.ContextLength} of {path}");
        var machine = MachineInfo.Describe();
        io.Out.WriteLine($"model {Path.GetFileName(path)}, backend {backend.Name}, {machine.CpuModel}, {machine.Cores} cores, {machine.Os}");
        io.Out.WriteLine($"verify cost after 64 cached positions (a pass of n rows against one decode step), median of {rounds} rounds:");
        io.Out.WriteLine("| rows | ms | x one row |");
        io.Out.WriteLine("|---:|---:|---:|");
        foreach (var c in SpeculationBench.Curve(m.Model, Math.Min(64, m.Config.ContextLength / 2), Math.Max(rounds, 5)))
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {c.Rows} | {c.Milliseconds:F2} | {c.RelativeToOneRow:F2} |"));
        io.Out.WriteLine($"greedy, {prompts.Count} prompts{(texts is null ? " of random ids" : $" from {Path.GetFileName(promptFile)}")}, {gen} tokens each, {rounds} alternating rounds (median, min..max):");
        io.Out.WriteLine("| method | plain tok/s | speculative tok/s | ratio | tokens/step | drafted/step | proposer bytes |");
        io.Out.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var x in SpeculationBench.Compare(m, prompts, gen, spec, rounds))
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {x.Label} | {x.PlainTokensPerSecond.Median:F1} | {x.SpeculativeTokensPerSecond.Median:F1} | {x.Ratio.Median:F3} ({x.Ratio.Min:F3}..{x.Ratio.Max:F3}) | {x.TokensPerStep:F3} | {x.DraftedPerStep:F1} | {x.ProposerBytes} |"));
        return 0;
    }

    /// <summary>Progress only on a real terminal: never into captured or redirected output.</summary>
    private static bool Interactive(CliIo io) =>
        ReferenceEquals(io.Err, Console.Error) && !Console.IsErrorRedirected && !Console.IsOutputRedirected;

    private static IAnsiConsole ConsoleFor(TextWriter writer, bool terminal)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        // A file or pipe has no width; 80 columns would wrap the header lines.
        if (!terminal) console.Profile.Width = 160;
        return console;
    }

    private static BenchReport RunWithProgress(CliIo io, string path, BenchOptions options, bool showProgress)
    {
        if (!showProgress) return BenchRunner.Run(path, options);
        BenchReport? report = null;
        ConsoleFor(io.Err, true).Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
            .Start(ctx => report = BenchRunner.Run(path, options, new SpectreProgress(ctx)));
        return report!;
    }

    /// <summary>One progress bar per stage (loading, each test, the bandwidth measurement).</summary>
    private sealed class SpectreProgress(ProgressContext ctx) : IProgress<BenchProgress>
    {
        private readonly Dictionary<string, ProgressTask> _tasks = [];

        public void Report(BenchProgress p)
        {
            if (!_tasks.TryGetValue(p.Stage, out var task))
                _tasks[p.Stage] = task = ctx.AddTask(Markup.Escape(p.Stage), maxValue: p.Total);
            task.Value = p.Done;
        }
    }
}

/// <summary>The terminal form of a report: a header of whole-run figures, then one row per test.</summary>
internal sealed class BenchTable(IAnsiConsole console)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public void Show(BenchReport r)
    {
        console.WriteLine($"model: {r.ModelPath} ({r.ModelType}, {Mib(r.ModelBytes)})");
        if (r.Backend == "cpu")
            console.WriteLine($"machine: {r.Machine.CpuModel}, {r.Machine.Cores} cores; {r.Threads} threads; read bandwidth {F(r.MachineBandwidthGBps, 1)} GB/s");
        else
            console.WriteLine($"backend: {r.Backend} ({r.Device}); device copy bandwidth {F(r.MachineBandwidthGBps, 1)} GB/s; host: {r.Machine.CpuModel}");
        console.WriteLine($"load: {F(r.LoadMs, 0)} ms; time to first token: {(r.TimeToFirstTokenMs is double t ? F(t, 1) + " ms" : "-")}; peak RSS: {Mib(r.PeakResidentBytes)}");
        var table = new Table { Border = Plain ? TableBorder.Markdown : TableBorder.Rounded };
        foreach (string h in new[] { "test", "t/s (median)", "± stddev", "min", "max", "GB/s", "of read bw" })
            table.AddColumn(new TableColumn(new Text(h)).RightAligned());
        table.Columns[0].LeftAligned();
        foreach (var x in r.Results)
        {
            var s = x.TokensPerSecond;
            Row(table, x.Test, F(s.Median, 2), F(s.StdDev, 2), F(s.Min, 2), F(s.Max, 2),
                x.BandwidthGBps is double b ? F(b, 2) : "-",
                r.BandwidthFraction(x) is double f ? (f * 100).ToString("0.0", Inv) + "%" : "-");
        }
        console.Write(table);
    }

    public void ShowComparison(IReadOnlyList<BenchComparison> rows, string oldPath)
    {
        console.WriteLine($"compared with {oldPath}:");
        if (rows.Count == 0)
        {
            console.WriteLine("no test of this run is in that file");
            return;
        }
        var table = new Table { Border = Plain ? TableBorder.Markdown : TableBorder.Rounded };
        foreach (string h in new[] { "test", "t/s new", "t/s old", "new/old" })
            table.AddColumn(new TableColumn(new Text(h)).RightAligned());
        table.Columns[0].LeftAligned();
        foreach (var c in rows) Row(table, c.Test, F(c.New, 2), F(c.Old, 2), F(c.Ratio, 3));
        console.Write(table);
    }

    // Without ANSI (a file, a pipe, a test) the table is Markdown, ready to paste into docs.
    private bool Plain => !console.Profile.Capabilities.Ansi;

    private static void Row(Table t, params string[] cells) => t.AddRow(cells.Select(c => (IRenderable)new Text(c)));

    private static string F(double v, int digits) => v.ToString("F" + digits, Inv);

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("0.0", Inv) + " MiB";
}
