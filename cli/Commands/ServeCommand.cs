using System.CommandLine;
using Tessera.Api;
using Tessera.Cli.Server;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera serve</c>: the OpenAI-compatible HTTP server.</summary>
internal static class ServeCommand
{
    public static Command Create(CliIo io)
    {
        var model = CommonOptions.Model();
        var host = new Option<string>("--host") { Description = "address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 picks a free one)", DefaultValueFactory = _ => 8080 };
        var parallel = new Option<int>("--parallel") { Description = "most requests generating at once, batched in each step (more wait in the queue)", DefaultValueFactory = _ => 16 };
        var context = CommonOptions.Context();
        var backend = CommonOptions.Backend();
        var speculation = new CommonOptions.Speculation();
        var kv = new CommonOptions.KvBudget();
        var pruning = new CommonOptions.PrefillPruning();
        var cmd = new Command("serve", "serve an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /health, /metrics)")
            { model, host, port, parallel, context, backend };
        speculation.AddTo(cmd);
        kv.AddTo(cmd);
        pruning.AddTo(cmd);
        cmd.SetAction(r => io.Guard(() =>
        {
            string path = r.GetValue(model)!;
            var spec = speculation.Read(r);
            var kvBudget = kv.Read(r);
            var prune = pruning.Read(r);
            if (kvBudget is not null && (spec is not null || prune is not null))
                throw new ArgumentException($"--kv-budget: not together with {(spec is not null ? "--speculate" : "--prefill-pruning")} as server defaults (a request may still ask for one or the other)");
            if (spec is not null && prune is not null) throw new ArgumentException("--prefill-pruning: not together with --speculate as server defaults");
            var options = new ServerOptions(r.GetValue(host)!, r.GetValue(port), ModelId(path));
            int n = r.GetValue(parallel);
            if (n < 1) throw new ArgumentException($"--parallel {n}: must be 1 or more");
            if (options.Port is < 0 or > 65535) throw new ArgumentException($"--port {options.Port}: must be 0 to 65535");
            if (r.GetValue(context) < 0) throw new ArgumentException($"--context {r.GetValue(context)}: must be positive");
            // The backend first: a missing GPU is reported (exit code 3) before the model is read.
            using var b = Tessera.Backends.BackendFactory.Create(r.GetValue(backend)!);
            using var engine = InferenceEngine.LoadAsync(path, b, new EngineOptions
            {
                ContextSize = r.GetValue(context),
                MaxSequences = n,
                // Room for each running request's decode token plus prompt chunks.
                MaxTokensPerStep = Math.Max(256, n),
            }).GetAwaiter().GetResult();
            // The draft model (if any) on the same backend, checked against the served model's vocabulary.
            var (withDraft, draftModel) = speculation.LoadDraft(spec, engine.Loaded, b);
            using var draftOwner = draftModel;
            options = options with { Speculation = withDraft, KvBudget = kvBudget, PrefillPruning = prune };
            prune?.CheckBackend(b);
            kvBudget?.CheckBackend(b);
            prune?.CheckModel(engine.Loaded.Config);
            kvBudget?.CheckModel(engine.Loaded.Config);
            var server = TesseraServer.StartAsync(engine, options, io.Err).GetAwaiter().GetResult();
            try { server.WaitForShutdownAsync().GetAwaiter().GetResult(); }
            finally { server.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
            return 0;
        }));
        return cmd;
    }

    /// <summary>The model's name for the API: the GGUF file's name without <c>.gguf</c>, or the folder's name
    /// (kept whole: Hugging Face names such as <c>Llama-3.2-1B</c> contain dots).</summary>
    internal static string ModelId(string path)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(path));
        if (name.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) name = name[..^".gguf".Length];
        return name.Length > 0 ? name : path;
    }
}
