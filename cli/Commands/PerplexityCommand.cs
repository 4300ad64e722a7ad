using System.CommandLine;
using Tessera.Evaluation;
using Tessera.Model;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera perplexity</c>: llama.cpp's perplexity protocol on a text file.</summary>
internal static class PerplexityCommand
{
    public static Command Create(CliIo io)
    {
        var model = CommonOptions.Model();
        var file = new Option<string>("--file", "-f") { Description = "text file to score", Required = true };
        var context = new Option<int>("--context", "-c") { Description = "chunk size in tokens (default: 512, or the model's context if smaller)" };
        var kv = new CommonOptions.KvBudget();
        var cmd = new Command("perplexity", "perplexity of a text (chunks of N tokens, second half of each scored)") { model, file, context };
        kv.AddTo(cmd);
        cmd.SetAction(r => io.Guard(() =>
        {
            var kvBudget = kv.Read(r);
            string path = r.GetValue(file)!;
            if (!File.Exists(path)) throw new ArgumentException($"--file {path}: no such file");
            string text = File.ReadAllText(path);
            using var m = LoadedModel.Load(r.GetValue(model)!);
            int ctx = r.GetValue(context);
            if (ctx == 0) ctx = Math.Min(512, m.Config.ContextLength);
            var result = Perplexity.Compute(m, text, ctx, (chunk, ppl) =>
                io.Err.Write(FormattableString.Invariant($"[{chunk}]{ppl:F4} ")), kvBudget);
            io.Err.WriteLine();
            io.Out.WriteLine(FormattableString.Invariant($"PPL = {result.Value:F4} ({result.Chunks} chunks of {ctx}, {result.ScoredTokens} tokens scored{(kvBudget is null ? "" : $", --kv-budget {kvBudget.Budget} {Tessera.Kv.KvBudgetOptions.NameOf(kvBudget.Policy)} sinks {kvBudget.Sinks}")})"));
            return 0;
        }));
        return cmd;
    }
}
