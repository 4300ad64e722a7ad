using System.CommandLine;
using Tessera.Chat;
using Tessera.Generation;
using Tessera.Model;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera chat</c>: an interactive conversation. Each turn renders the whole conversation with the model's chat
/// format, keeps the cached positions that are unchanged and runs only the new tokens.
/// </summary>
internal static class ChatCommand
{
    public static Command Create(CliIo io)
    {
        var model = CommonOptions.Model();
        var system = new Option<string?>("--system") { Description = "system message" };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "most tokens per reply", DefaultValueFactory = _ => 256 };
        var context = CommonOptions.Context();
        var special = CommonOptions.Special();
        var sampling = new CommonOptions.Sampling();
        var speculation = new CommonOptions.Speculation();
        var kv = new CommonOptions.KvBudget();
        var pruning = new CommonOptions.PrefillPruning();
        var constraint = new CommonOptions.Constraint();
        var cmd = new Command("chat", "chat with a model (type /exit or end input to quit, /reset to start over)") { model, system, maxTokens, special, context };
        sampling.AddTo(cmd);
        speculation.AddTo(cmd);
        kv.AddTo(cmd);
        pruning.AddTo(cmd);
        constraint.AddTo(cmd);
        cmd.SetAction(r => io.Guard(() =>
        {
            var samplingOptions = sampling.Read(r);
            var speculationOptions = speculation.Read(r);   // bad options are reported before the model is read
            using var m = LoadedModel.Load(r.GetValue(model)!);
            var (withDraft, draftModel) = speculation.LoadDraft(speculationOptions, m, m.Model.Backend);
            using var draftOwner = draftModel;
            speculationOptions = withDraft;
            var formatter = ChatFormatter.ForTemplate(m.ChatTemplate);
            int ctx = CommonOptions.ResolveContext(r.GetValue(context), m.Config.ContextLength);
            var options = new GenerationOptions
            {
                KvBudget = kv.Read(r),
                PrefillPruning = pruning.Read(r),
                MaxTokens = r.GetValue(maxTokens), Sampling = samplingOptions, StopStrings = formatter.StopStrings,
                RenderSpecial = r.GetValue(special),
                Constraint = constraint.Read(r),
                // Token Recycling learns across the turns of a session (hot start): one successor table for all.
                Speculation = speculationOptions is { Method: Tessera.Speculation.SpeculationMethod.Recycle }
                    ? speculationOptions with { Successors = new Tessera.Speculation.SuccessorTable(m.Config.VocabSize) }
                    : speculationOptions,
            };
            options.Validate();
            if (options.Constraint is { } grammar) Tessera.Constraints.TokenConstraint.CheckCanStart(grammar, m.Tokenizer);
            using var state = m.Model.CreateState(ctx, options.PrefillPruning is null ? 256 : ctx);   // a pruned prompt runs as one step
            var gen = new TextGenerator(m.Model, m.Tokenizer);
            var messages = new List<ChatMessage>();
            string? sys = r.GetValue(system);
            if (!string.IsNullOrEmpty(sys)) messages.Add(new ChatMessage("system", sys));
            var cached = new List<int>();   // tokens whose keys/values are in the cache, in order
            io.Err.WriteLine($"chat format: {formatter.Format}; /exit to quit, /reset to start over");
            while (true)
            {
                io.Out.Write("> ");
                io.Out.Flush();
                string? line = io.In.ReadLine();
                if (line == null || line.Trim() == "/exit") break;
                if (line.Trim() == "/reset")
                {
                    messages.RemoveAll(x => x.Role != "system");
                    cached.Clear();
                    state.Rewind(0);
                    continue;
                }
                if (line.Trim().Length == 0) continue;
                messages.Add(new ChatMessage("user", line));
                var tokens = m.Tokenizer.Encode(formatter.Render(messages), m.Tokenizer.AddBosByDefault, parseSpecial: true);
                if (tokens.Count + 1 >= ctx)
                {
                    io.Err.WriteLine($"error: the conversation is {tokens.Count} tokens and no longer fits the context of {ctx}; /reset to start over");
                    messages.RemoveAt(messages.Count - 1);
                    continue;
                }
                // Reuse the cached prefix; at least one token must run to produce logits.
                int keep = 0;
                while (keep < cached.Count && keep < tokens.Count - 1 && cached[keep] == tokens[keep]) keep++;
                // Under a KV budget the cache holds only some of the past, so it can go on only from its very end:
                // when the new render does not extend it exactly, the conversation runs again from the start.
                if (options.KvBudget is not null && keep < cached.Count) keep = 0;
                // A pruned prompt's rows are missing from deep layers: each turn's prompt is pruned anew, from the start.
                if (options.PrefillPruning is not null) keep = 0;
                state.Rewind(keep);
                cached.RemoveRange(keep, cached.Count - keep);
                var fresh = tokens.Skip(keep).ToList();
                var reply = new System.Text.StringBuilder();
                var stats = new GenerationStats();
                var replyTokens = new List<int>();
                foreach (var step in gen.Generate(state, fresh, options, stats))
                {
                    if (step.Token >= 0) replyTokens.Add(step.Token);
                    reply.Append(step.Text);
                    io.Out.Write(step.Text);
                    io.Out.Flush();
                }
                io.Out.WriteLine();
                cached.AddRange(fresh);
                // The cache now also holds the reply's tokens, but re-rendering may tokenize them differently, so
                // only the prompt part is trusted for reuse next turn (under a budget, the cache goes on as it is).
                if (options.KvBudget is null) state.Rewind(cached.Count);
                else
                {
                    cached.AddRange(replyTokens);   // what ran: a reply cut by a stop string did not run its last token
                    if (cached.Count > state.Position) cached.RemoveRange(state.Position, cached.Count - state.Position);
                }
                messages.Add(new ChatMessage("assistant", reply.ToString().Trim()));
            }
            return 0;
        }));
        return cmd;
    }
}
