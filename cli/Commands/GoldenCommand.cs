using System.CommandLine;
using System.Globalization;
using Tessera.Backends;
using Tessera.Evaluation;
using Tessera.Model;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera golden [DIR]</c>: every model of DIR/models that has llama.cpp outputs in DIR/golden, on the chosen
/// backend: tokens, prompt logits and the teacher-forced greedy continuation (see <see cref="GoldenCheck"/>). DIR is
/// the shared data folder (default: $TESSERA_SHARED, else ../shared, else ./shared). This is how the golden tests run
/// where there is no .NET (the NativeAOT binary on a GPU machine).
/// Exit code: 0 all passed, 1 a case failed (or bad options), 3 the requested backend cannot start.
/// </summary>
internal static class GoldenCommand
{
    public static Command Create(CliIo io)
    {
        var dir = new Argument<string?>("DIR") { Description = "shared data folder with golden/ and models/", Arity = ArgumentArity.ZeroOrOne };
        var backend = CommonOptions.Backend();
        var only = new Option<string?>("--only") { Description = "only model folders whose name contains this text" };
        var cmd = new Command("golden", "compare logits and greedy tokens with llama.cpp's golden outputs") { dir, backend, only };
        cmd.SetAction(r => io.Guard(() =>
        {
            string root = r.GetValue(dir) ?? DefaultRoot();
            string golden = Path.Combine(root, "golden"), models = Path.Combine(root, "models");
            if (!Directory.Exists(golden)) throw new ArgumentException($"DIR '{root}': no golden/ folder in it");
            string? filter = r.GetValue(only);
            var names = Directory.GetDirectories(golden).Select(Path.GetFileName).OfType<string>()
                .Where(n => File.Exists(Path.Combine(models, n + ".gguf")) && (filter is null || n.Contains(filter, StringComparison.Ordinal)))
                .Order(StringComparer.Ordinal).ToList();
            if (names.Count == 0) throw new ArgumentException($"DIR '{root}': no golden folder has a matching models/NAME.gguf{(filter is null ? "" : $" (--only {filter})")}");
            using var b = BackendFactory.Create(r.GetValue(backend)!);
            int failed = 0, total = 0;
            foreach (string name in names)
            {
                using var m = LoadedModel.Load(Path.Combine(models, name + ".gguf"), b);
                double tol = GoldenCheck.Tolerance(name, b);
                for (int p = 0; File.Exists(Path.Combine(golden, name, $"p{p}.json")); p++)
                {
                    var o = GoldenCheck.Run(m, GoldenReference.Load(Path.Combine(golden, name), p), tol);
                    total++;
                    if (!o.Passed) failed++;
                    io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{b.Name,-5} {name,-28} p{p}  tokens {(o.TokensMatch ? "ok" : "DIFFER")}  prompt nmse {o.MaxPromptNmse,9:E2} (pos {o.WorstPosition,2})  greedy nmse {o.MaxGreedyNmse,9:E2}  tol {tol:E0}  greedy {o.Compared - o.Mismatched}/{o.Compared} of {o.Steps}  {(o.Passed ? "ok" : "FAIL")}"));
                }
            }
            io.Out.WriteLine($"{r.GetValue(backend)}: {total - failed}/{total} golden cases passed");
            return failed > 0 ? 1 : 0;
        }));
        return cmd;
    }

    private static string DefaultRoot()
    {
        if (Environment.GetEnvironmentVariable("TESSERA_SHARED") is { Length: > 0 } env) return env;
        return Directory.Exists(Path.Combine("..", "shared", "golden")) ? Path.Combine("..", "shared") : "shared";
    }
}
