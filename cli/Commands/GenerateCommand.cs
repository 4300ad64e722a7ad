using System.CommandLine;
using System.Text.Json;
using Tessera.Generation;
using Tessera.Model;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera generate</c>: one prompt, streamed continuation, a stats line.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliIo io)
    {
        var model = CommonOptions.Model();
        var prompt = new Option<string>("--prompt", "-p") { Description = "the prompt text", Required = true };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "most tokens to generate", DefaultValueFactory = _ => 128 };
        var stop = new Option<string[]>("--stop") { Description = "stop when this text appears (repeatable)", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "print one JSON object (prompt_tokens, tokens, text, timings) instead of streaming" };
        var noEcho = new Option<bool>("--no-display-prompt") { Description = "do not print the prompt before the continuation" };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "keep generating past the end-of-generation token (as llama.cpp's --ignore-eos; for measurements)" };
        var special = CommonOptions.Special();
        var cautious = new Option<bool>("--cautious") { Description = "Cautious NTP: where the model is unsure, sample several trials up to punctuation and keep the most probable (sampling only)" };
        var cautiousTrials = new Option<int>("--cautious-trials") { Description = "most trials at an uncertain step (with --cautious)", DefaultValueFactory = _ => 10 };
        var healing = new Option<bool>("--token-healing") { Description = "back the prompt up by its last token and make the output start with its text, so a prompt cut mid-word is continued as the word" };
        var exactBytes = new Option<bool>("--exact-bytes") { Description = "complete a word the prompt cuts in the middle byte by byte from exact next-byte probabilities (Phan et al.; greedy), then generate on from the whole word" };
        var suffix = new Option<string>("--suffix") { Description = "text that comes after the generated text: the model fills in the middle (needs a model with FIM tokens, as llama.cpp's infill)" };
        var choices = new Option<int>("--choices") { Description = "independent continuations (OpenAI's n, up to 16): the prompt is computed once, each choice a fork of its cache sampling with seed + index", DefaultValueFactory = _ => 1 };
        var context = CommonOptions.Context();
        var backend = CommonOptions.Backend();
        var sampling = new CommonOptions.Sampling();
        var speculation = new CommonOptions.Speculation();
        var constraint = new CommonOptions.Constraint();
        var kv = new CommonOptions.KvBudget();
        var pruning = new CommonOptions.PrefillPruning();
        var cmd = new Command("generate", "generate text from a prompt") { model, prompt, maxTokens, stop, json, noEcho, ignoreEos, special, healing, cautious, cautiousTrials, exactBytes, suffix, choices, context, backend };
        sampling.AddTo(cmd);
        speculation.AddTo(cmd);
        constraint.AddTo(cmd);
        kv.AddTo(cmd);
        pruning.AddTo(cmd);
        cmd.SetAction(r => io.Guard(() =>
        {
            var options = new GenerationOptions
            {
                KvBudget = kv.Read(r),
                PrefillPruning = pruning.Read(r),
                MaxTokens = r.GetValue(maxTokens),
                Sampling = sampling.Read(r),
                StopStrings = r.GetValue(stop) ?? [],
                Speculation = speculation.Read(r),
                StopAtEndOfGeneration = !r.GetValue(ignoreEos),
                RenderSpecial = r.GetValue(special),
                Constraint = constraint.Read(r),
                TokenHealing = r.GetValue(healing),
                Cautious = r.GetValue(cautious) ? new CautiousOptions { MaxTrials = r.GetValue(cautiousTrials) } : null,
                Choices = r.GetValue(choices),
                Suffix = r.GetValue(suffix),
            };
            if (options.Choices is < 1 or > GenerationOptions.MaxChoices)
                throw new ArgumentException($"--choices {options.Choices}: must be 1 to {GenerationOptions.MaxChoices}");
            if (options.Speculation is not { Method: Tessera.Speculation.SpeculationMethod.Draft }) options.Validate();
            string text = r.GetValue(prompt)!;
            if (text.Length == 0) throw new ArgumentException("--prompt is empty: give some text to continue");
            if (options.Choices > 1 && options.Speculation is { Method: Tessera.Speculation.SpeculationMethod.Draft })
                throw new ArgumentException("--choices with --speculate draft: give one (the choices run under the batching scheduler, which takes no draft model here)");
            // The backend first: a missing GPU is reported before the model is read.
            using var b = Tessera.Backends.BackendFactory.Create(r.GetValue(backend)!);
            if (r.GetValue(exactBytes) && (options.TokenHealing || options.Suffix is not null || options.Choices > 1))
                throw new ArgumentException("--exact-bytes: not with --token-healing, --suffix or --choices (it completes the prompt's last word itself)");
            if (options.PrefillPruning is not null && (options.Choices > 1 || r.GetValue(exactBytes)))
                throw new ArgumentException($"--prefill-pruning with {(options.Choices > 1 ? "--choices" : "--exact-bytes")}: give one or the other");
            if (options.KvBudget is not null && options.Choices > 1)
                throw new ArgumentException("--kv-budget with --choices: the choices share their prompt's blocks, which a budget would rewrite; give one");
            if (options.Choices > 1)
                return GenerateChoices(io, r.GetValue(model)!, b, text, options, r.GetValue(context), r.GetValue(json), !r.GetValue(noEcho));
            using var m = LoadedModel.Load(r.GetValue(model)!, b);
            var (withDraft, draftModel) = speculation.LoadDraft(options.Speculation, m, b);
            using var draftOwner = draftModel;
            options = options with { Speculation = withDraft };
            options.Validate();
            if (options.Constraint is { } grammar) Tessera.Constraints.TokenConstraint.CheckCanStart(grammar, m.Tokenizer);
            int ctx = CommonOptions.ResolveContext(r.GetValue(context), m.Config.ContextLength);
            string word = "";
            if (r.GetValue(exactBytes))
            {
                using (var scorer = new ModelTokenScorer(m.Model, CommonOptions.ResolveContext(r.GetValue(context), m.Config.ContextLength)))
                    word = new ExactBytes(scorer, m.Tokenizer).CompleteWord(text);  // its cache is freed before generation
            }
            // Options the backend cannot serve are refused before anything is printed.
            options.KvBudget?.CheckBackend(b);
            options.PrefillPruning?.CheckBackend(b);
            options.KvBudget?.CheckModel(m.Config);
            options.PrefillPruning?.CheckModel(m.Config);
            bool echoPrompt = !r.GetValue(json) && !r.GetValue(noEcho);
            if (echoPrompt) { io.Out.Write(text + word); io.Out.Flush(); }
            text += word;
            var tokens = options.Suffix is { } after ? m.Tokenizer.EncodeInfill(text, after) : m.Tokenizer.Encode(text, m.Tokenizer.AddBosByDefault);
            if (tokens.Count >= ctx)
                throw new ArgumentException($"--prompt is {tokens.Count} tokens, which does not fit the context of {ctx} (use a shorter prompt or a larger --context)");
            // Under a budget the cache needs only the budget's rows plus one prompt chunk: that is the memory it saves.
            const int chunk = 256;
            // A pruned prompt runs as one step.
            using var state = m.Model.CreateState(options.KvBudget is { } cap ? Math.Min(ctx, cap.Budget - 1 + chunk) : ctx,
                options.PrefillPruning is null ? chunk : ctx);
            var gen = new TextGenerator(m.Model, m.Tokenizer);
            var stats = new GenerationStats();
            bool asJson = r.GetValue(json);
            var ids = new List<int>();
            var sb = new System.Text.StringBuilder();
            if (!asJson && r.GetValue(noEcho) && word.Length > 0) io.Out.Write(word);  // the completed word is output
            // (a suffix is already in the tokens: EncodeInfill framed them)
            foreach (var step in gen.Generate(state, tokens, options with { Suffix = null }, stats))
            {
                if (step.Token >= 0) ids.Add(step.Token);
                sb.Append(step.Text);
                if (!asJson && step.Text.Length > 0) { io.Out.Write(step.Text); io.Out.Flush(); }
            }
            if (asJson) WriteJson(io.Out, tokens, ids, word + sb.ToString(), stats, options.KvBudget, m.Config.KvBytesPerPosition);
            else
            {
                if (options.Suffix is { } rest && !r.GetValue(noEcho)) io.Out.Write(rest);  // the whole text, the middle in place
                io.Out.WriteLine();
                io.Err.WriteLine(FormattableString.Invariant(
                    $"prompt: {stats.PromptTokens} tokens, {stats.PromptTokensPerSecond:F1} tok/s | generated: {stats.GeneratedTokens} tokens, {stats.GenerationTokensPerSecond:F1} tok/s | stop: {stats.FinishReason}"));
                if (state.Pruning is { PromptRows: > 0 } pp)
                    io.Err.WriteLine(FormattableString.Invariant($"prefill pruning ({Tessera.Pruning.PrefillPruningOptions.NameOf(pp.Options.Method)}, keep {pp.Options.Keep}): {pp.KeptRows} of {pp.PromptRows} prompt tokens reached the last layer, {100 * pp.ComputedShare:F1}% of the row-layers computed"));
                if (options.KvBudget is { } kvb)
                    io.Err.WriteLine($"kv budget ({Tessera.Kv.KvBudgetOptions.NameOf(kvb.Policy)}, {kvb.Budget} positions, {kvb.Sinks} sinks): peak {stats.KvPeakPositions} positions ({stats.KvPeakPositions * m.Config.KvBytesPerPosition / 1024} KiB), {stats.KvDroppedPositions} dropped");
                if (stats.Cautious is { } ct)
                    io.Err.WriteLine($"cautious: {ct.UncertainSteps} uncertain steps, {ct.Trials} trials, {ct.ExtraForwardPasses} extra forward passes");
                if (stats.Speculation is { } sp)
                    io.Err.WriteLine(FormattableString.Invariant(
                        $"speculation ({sp.Method}): {sp.AcceptedTokens} of {sp.DraftedTokens} drafted tokens accepted, {sp.TokensPerStep:F2} tokens per verification pass"));
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>Several choices of one prompt: run by the batching scheduler (the prompt computed once, each choice a
    /// fork of its KV cache), then printed one after another (streamed, they would interleave).</summary>
    private static int GenerateChoices(CliIo io, string path, Tessera.Backends.IBackend backend, string text, GenerationOptions options,
        int context, bool asJson, bool echo)
    {
        if (context < 0) throw new ArgumentException($"--context {context}: must be positive");
        // The engine resolves 0 as generate does (the file's context, at most 4096) and refuses more than the file's.
        using var engine = Tessera.Api.InferenceEngine.LoadAsync(path, backend,
            new Tessera.Api.EngineOptions { ContextSize = context, MaxSequences = options.Choices }).GetAwaiter().GetResult();
        int ctx = engine.ContextSize;
        var prompt = engine.PromptTokens(text, options);
        if (prompt.Count >= ctx)
            throw new ArgumentException($"--prompt is {prompt.Count} tokens, which does not fit the context of {ctx} (use a shorter prompt or a larger --context)");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var results = engine.CompleteChoicesAsync(text, options).GetAwaiter().GetResult();
        double seconds = sw.Elapsed.TotalSeconds;
        if (asJson)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteStartArray("prompt_tokens");
                foreach (int t in prompt) w.WriteNumberValue(t);
                w.WriteEndArray();
                w.WriteNumber("prompt_tokens_computed", engine.PromptTokensComputed);
                w.WriteStartArray("choices");
                for (int i = 0; i < results.Count; i++)
                {
                    w.WriteStartObject();
                    w.WriteNumber("index", i);
                    w.WriteStartArray("tokens");
                    foreach (int t in results[i].TokenIds) w.WriteNumberValue(t);
                    w.WriteEndArray();
                    w.WriteString("text", results[i].Text);
                    w.WriteString("finish_reason", results[i].FinishReason.ToString());
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            io.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
            return 0;
        }
        for (int i = 0; i < results.Count; i++)
        {
            io.Out.WriteLine($"--- choice {i} ---");
            io.Out.WriteLine(echo ? text + results[i].Text + options.Suffix : results[i].Text);
        }
        int generated = results.Sum(x => x.TokenIds.Count);
        io.Err.WriteLine(FormattableString.Invariant(
            $"prompt: {prompt.Count} tokens, {engine.PromptTokensComputed} positions computed for all choices | generated: {generated} tokens in {results.Count} choices, {generated / Math.Max(seconds, 1e-9):F1} tok/s"));
        return 0;
    }

    private static void WriteJson(TextWriter o, IReadOnlyList<int> prompt, List<int> ids, string text, GenerationStats s,
        Tessera.Kv.KvBudgetOptions? kv, long bytesPerPosition)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = false }))
        {
            w.WriteStartObject();
            w.WriteStartArray("prompt_tokens");
            foreach (int t in prompt) w.WriteNumberValue(t);
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            foreach (int t in ids) w.WriteNumberValue(t);
            w.WriteEndArray();
            w.WriteString("text", text);
            w.WriteString("finish_reason", s.FinishReason.ToString());
            w.WriteNumber("prompt_tokens_per_second", Math.Round(s.PromptTokensPerSecond, 2));
            w.WriteNumber("generated_tokens_per_second", Math.Round(s.GenerationTokensPerSecond, 2));
            if (s.Speculation is { } sp)
            {
                w.WriteStartObject("speculation");
                w.WriteString("method", sp.Method);
                w.WriteNumber("verify_steps", sp.VerifySteps);
                w.WriteNumber("drafted_tokens", sp.DraftedTokens);
                w.WriteNumber("accepted_tokens", sp.AcceptedTokens);
                w.WriteNumber("tokens_per_step", Math.Round(sp.TokensPerStep, 3));
                w.WriteNumber("proposer_bytes", sp.ProposerBytes);
                w.WriteEndObject();
            }
            w.WriteStartObject("kv");
            if (kv is not null)
            {
                w.WriteNumber("budget", kv.Budget);
                w.WriteString("policy", Tessera.Kv.KvBudgetOptions.NameOf(kv.Policy));
                w.WriteNumber("sinks", kv.Sinks);
            }
            w.WriteNumber("peak_positions", s.KvPeakPositions);
            w.WriteNumber("peak_bytes", s.KvPeakPositions * bytesPerPosition);
            w.WriteNumber("dropped_positions", s.KvDroppedPositions);
            w.WriteEndObject();
            if (s.Cautious is { } c)
            {
                w.WriteStartObject("cautious");
                w.WriteNumber("uncertain_steps", c.UncertainSteps);
                w.WriteNumber("trials", c.Trials);
                w.WriteNumber("extra_forward_passes", c.ExtraForwardPasses);
                w.WriteNumber("trial_rows", c.TrialRows);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        o.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
    }
}
