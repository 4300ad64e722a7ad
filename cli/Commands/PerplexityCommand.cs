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
        var pruning = new CommonOptions.PrefillPruning();
        var scoreLast = new Option<int>("--score-last") { Description = "prefill all but the last N tokens of each chunk (pruned with --prefill-pruning) and score those N by teacher-forced decoding, one token per step" };
        var agreement = new Option<bool>("--agreement")
        {
            Description = "with --kv-budget or --prefill-pruning: also continue prompts of 448 tokens cut from the text greedily for 32 tokens, with and without it, and print how often the tokens agree",
        };
        var cmd = new Command("perplexity", "perplexity of a text (chunks of N tokens, second half of each scored)") { model, file, context };
        kv.AddTo(cmd);
        cmd.Add(agreement);
        cmd.Add(scoreLast);
        pruning.AddTo(cmd);
        cmd.SetAction(r => io.Guard(() =>
        {
            var kvBudget = kv.Read(r);
            var prune = pruning.Read(r);
            string path = r.GetValue(file)!;
            if (!File.Exists(path)) throw new ArgumentException($"--file {path}: no such file");
            string text = File.ReadAllText(path);
            if (r.GetValue(agreement) && (kvBudget is null) == (prune is null))
                throw new ArgumentException("--agreement: compares one --kv-budget or one --prefill-pruning with the full model; give one of them");
            using var m = LoadedModel.Load(r.GetValue(model)!);
            int ctx = r.GetValue(context);
            if (ctx == 0) ctx = Math.Min(512, m.Config.ContextLength);
            var result = Perplexity.Compute(m, text, ctx, (chunk, ppl) =>
                io.Err.Write(FormattableString.Invariant($"[{chunk}]{ppl:F4} ")), kvBudget, prune, r.GetValue(scoreLast));
            io.Err.WriteLine();
            io.Out.WriteLine(FormattableString.Invariant($"PPL = {result.Value:F4} ({result.Chunks} chunks of {ctx}, {result.ScoredTokens} tokens scored{(kvBudget is null ? "" : $", --kv-budget {kvBudget.Budget} {Tessera.Kv.KvBudgetOptions.NameOf(kvBudget.Policy)} sinks {kvBudget.Sinks}")}{(prune is null ? "" : $", --prefill-pruning {Tessera.Pruning.PrefillPruningOptions.NameOf(prune.Method)} keep {prune.Keep}")}{(r.GetValue(scoreLast) > 0 ? $", the last {r.GetValue(scoreLast)} of each chunk" : "")})"));
            if (r.GetValue(agreement))
            {
                int promptLength = Math.Min(448, m.Config.ContextLength - 32);
                var g = GreedyAgreement.Run(m, text, kvBudget, prune, promptLength, 32);
                io.Out.WriteLine(FormattableString.Invariant($"greedy agreement with the full model: {100 * g.Agreement:F1}% of the first {g.Tokens} tokens, common prefix {g.MeanCommonPrefix:F1} tokens ({g.Prompts} prompts of {promptLength} tokens)"));
            }
            return 0;
        }));
        return cmd;
    }
}
