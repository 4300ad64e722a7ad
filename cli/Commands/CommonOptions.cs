using System.CommandLine;
using Tessera.Model;
using Tessera.Sampling;

namespace Tessera.Cli.Commands;

/// <summary>Options shared by several commands, spelled as llama.cpp spells them where it has them.</summary>
internal static class CommonOptions
{
    public static Option<string> Model() => new("--model", "-m")
    {
        Description = "GGUF file or Hugging Face folder (config.json + model.safetensors + tokenizer)",
        Required = true,
    };

    /// <summary><c>--backend cpu|cuda</c> (default cpu).</summary>
    public static Option<string> Backend()
    {
        var o = new Option<string>("--backend", "-b") { Description = "where the model runs: cpu or cuda", DefaultValueFactory = _ => "cpu" };
        o.AcceptOnlyFromAmong([.. Tessera.Backends.BackendFactory.Names]);
        return o;
    }

    public static Option<int> Context() => new("--context", "-c")
    {
        Description = "context size in tokens (default: the model's, at most 4096)",
    };

    /// <summary><c>--special</c>, as llama.cpp: show control tokens and a spelled-out end marker in the output.</summary>
    public static Option<bool> Special() => new("--special")
    {
        Description = "render control tokens as text and show an end-of-generation marker the model spells out (as llama.cpp's --special)",
    };

    /// <summary>The sampling options, added to a command together.</summary>
    internal sealed class Sampling
    {
        public readonly Option<float> Temperature = new("--temperature", "--temp") { Description = "temperature; 0 = greedy", DefaultValueFactory = _ => 0.8f };
        public readonly Option<int> TopK = new("--top-k") { Description = "top-k sampling (0 = off)", DefaultValueFactory = _ => 40 };
        public readonly Option<float> TopP = new("--top-p") { Description = "top-p sampling (1 = off)", DefaultValueFactory = _ => 0.95f };
        public readonly Option<float> MinP = new("--min-p") { Description = "min-p sampling (0 = off)", DefaultValueFactory = _ => 0.05f };
        public readonly Option<float> RepeatPenalty = new("--repeat-penalty") { Description = "repetition penalty (1 = off)", DefaultValueFactory = _ => 1.0f };
        public readonly Option<float> FrequencyPenalty = new("--frequency-penalty") { Description = "frequency penalty (0 = off)" };
        public readonly Option<float> PresencePenalty = new("--presence-penalty") { Description = "presence penalty (0 = off)" };
        public readonly Option<int> RepeatLastN = new("--repeat-last-n") { Description = "tokens the penalties look back over", DefaultValueFactory = _ => 64 };
        public readonly Option<ulong?> Seed = new("--seed", "-s") { Description = "random seed (default: random)" };
        public readonly Option<string[]> LogitBias = new("--logit-bias", "-l")
        {
            Description = "TOKEN_ID(+|-)BIAS or TOKEN_ID=BIAS: add BIAS to a token's logit, as llama.cpp (e.g. 15043+1, 15043-1, 15043=-1.5, 2-inf bans token 2); repeatable",
        };

        public void AddTo(Command c)
        {
            foreach (Option o in new Option[] { Temperature, TopK, TopP, MinP, RepeatPenalty, FrequencyPenalty, PresencePenalty, RepeatLastN, Seed, LogitBias })
                c.Add(o);
        }

        public SamplingOptions Read(ParseResult r)
        {
            var s = new SamplingOptions
            {
                Temperature = r.GetValue(Temperature),
                TopK = r.GetValue(TopK),
                TopP = r.GetValue(TopP),
                MinP = r.GetValue(MinP),
                RepetitionPenalty = r.GetValue(RepeatPenalty),
                FrequencyPenalty = r.GetValue(FrequencyPenalty),
                PresencePenalty = r.GetValue(PresencePenalty),
                PenaltyWindow = r.GetValue(RepeatLastN),
                Seed = r.GetValue(Seed),
                LogitBias = r.GetValue(LogitBias) is { Length: > 0 } biases ? ParseLogitBias(biases) : null,
            };
            s.Validate();
            return s;
        }

        /// <summary><c>--logit-bias</c> values: llama.cpp's <c>TOKEN_ID(+|-)BIAS</c> (<c>15043+1</c>, <c>2-inf</c>) or
        /// <c>TOKEN_ID=BIAS</c> (<c>15043=-1.5</c>, <c>2=-inf</c>); a token given twice keeps the last.</summary>
        internal static Dictionary<int, float> ParseLogitBias(IEnumerable<string> values)
        {
            var bias = new Dictionary<int, float>();
            foreach (string v in values)
            {
                int eq = v.IndexOf('=');
                // TOKEN=BIAS splits at '='; TOKEN(+|-)BIAS at the sign, which is part of the bias.
                int split = eq >= 0 ? eq : v.IndexOfAny(['+', '-'], 1);
                var biasText = eq >= 0 ? v.AsSpan(eq + 1) : split < 0 ? default : v.AsSpan(split);
                if (split <= 0 || !int.TryParse(v.AsSpan(0, split), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int token)
                    || !TryParseBias(biasText, out float b))
                    throw new ArgumentException($"--logit-bias {v}: expected TOKEN_ID(+|-)BIAS or TOKEN_ID=BIAS, e.g. 15043+1, 15043-inf or 15043=-1.5");
                bias[token] = b;
            }
            return bias;
        }

        private static bool TryParseBias(ReadOnlySpan<char> text, out float bias)
        {
            bias = 0;
            if (text.IsEmpty) return false;
            var magnitude = text[0] is '+' or '-' ? text[1..] : text;
            if (magnitude.Equals("inf", StringComparison.OrdinalIgnoreCase))
            {
                bias = text[0] == '-' ? float.NegativeInfinity : float.PositiveInfinity;
                return true;
            }
            // Digits only after the sign: "nan", "infinity" or a second sign are not biases.
            if (magnitude.IsEmpty || !(char.IsAsciiDigit(magnitude[0]) || magnitude[0] == '.')) return false;
            return float.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out bias)
                && float.IsFinite(bias);
        }
    }

    /// <summary>The output constraint: <c>--grammar FILE.gbnf</c>, <c>--json-schema FILE</c>, <c>--regex RE</c> or
    /// <c>--json-object</c> (at most one), added to a command together.</summary>
    internal sealed class Constraint
    {
        public readonly Option<string?> GrammarFile = new("--grammar") { Description = "constrain the output to a llama.cpp GBNF grammar (FILE.gbnf)" };
        public readonly Option<string?> SchemaFile = new("--json-schema") { Description = "constrain the output to JSON that a JSON Schema (FILE) accepts" };
        public readonly Option<string?> Regex = new("--regex") { Description = "constrain the output to text that the regular expression matches as a whole" };
        public readonly Option<bool> JsonObject = new("--json-object") { Description = "constrain the output to a JSON object (OpenAI's json_object)" };

        public void AddTo(Command c)
        {
            foreach (Option o in new Option[] { GrammarFile, SchemaFile, Regex, JsonObject }) c.Add(o);
        }

        /// <summary>The grammar asked for, or null; a file that is missing or does not compile is an error naming it.</summary>
        public Tessera.Constraints.Grammar? Read(ParseResult r)
        {
            string? grammar = r.GetValue(GrammarFile), schema = r.GetValue(SchemaFile), regex = r.GetValue(Regex);
            bool json = r.GetValue(JsonObject);
            int given = (grammar is null ? 0 : 1) + (schema is null ? 0 : 1) + (regex is null ? 0 : 1) + (json ? 1 : 0);
            if (given > 1) throw new ArgumentException("--grammar, --json-schema, --regex and --json-object: give at most one");
            try
            {
                if (grammar is not null) return Tessera.Constraints.Grammar.ParseGbnf(ReadFile(grammar, "--grammar"), grammar);
                if (schema is not null) return Tessera.Constraints.Grammar.FromJsonSchema(ReadFile(schema, "--json-schema"), schema);
                if (regex is not null) return Tessera.Constraints.Grammar.FromRegex(regex);
            }
            catch (FormatException e) { throw new ArgumentException(e.Message); }
            return json ? Tessera.Constraints.Grammar.AnyJsonObject : null;
        }

        private static string ReadFile(string path, string option)
        {
            if (!File.Exists(path)) throw new ArgumentException($"{option} {path}: no such file");
            return File.ReadAllText(path);
        }
    }

    /// <summary><c>--kv-budget N</c>, <c>--kv-policy P</c>, <c>--kv-sinks S</c>: a cap on each sequence's KV cache.</summary>
    internal sealed class KvBudget
    {
        public readonly Option<int?> Budget = new("--kv-budget")
        {
            Description = "cap each sequence's KV cache: no token attends to more than N positions; when full, --kv-policy drops the lowest-ranked",
        };
        public readonly Option<string?> Policy = new("--kv-policy")
        {
            Description = "what a full --kv-budget drops: window (StreamingLLM: sinks + recent), h2o (heavy hitters, the default), keyformer, snapkv",
        };
        public readonly Option<int?> Sinks = new("--kv-sinks") { Description = "first positions every --kv-policy keeps (attention sinks; default 4, 0 for none)" };

        public void AddTo(Command c)
        {
            c.Add(Budget);
            c.Add(Policy);
            c.Add(Sinks);
        }

        /// <summary>The options given, checked, or null without <c>--kv-budget</c>.</summary>
        public Tessera.Kv.KvBudgetOptions? Read(ParseResult r)
        {
            int? budget = r.GetValue(Budget);
            string? policy = r.GetValue(Policy);
            int? sinks = r.GetValue(Sinks);
            if (budget is null)
            {
                if (policy is not null || sinks is not null)
                    throw new ArgumentException($"{(policy is not null ? "--kv-policy" : "--kv-sinks")}: needs --kv-budget N (how many positions to keep)");
                return null;
            }
            var o = new Tessera.Kv.KvBudgetOptions
            {
                Budget = budget.Value,
                Policy = policy is null ? Tessera.Kv.KvPolicy.H2O : Tessera.Kv.KvBudgetOptions.ParsePolicy(policy),
                Sinks = sinks ?? 4,
            };
            o.Validate();
            return o;
        }
    }

    /// <summary><c>--prefill-pruning METHOD</c> and <c>--keep K</c>: prompt pruning.</summary>
    internal sealed class PrefillPruning
    {
        public readonly Option<string?> Method = new("--prefill-pruning")
        {
            Description = "prune the prompt for a faster first token: lazyllm (rank by the last token's attention) or spatten (cumulative attention per query that sees the token); from layers L/4, L/2, 3L/4 on only the best-ranked tokens run",
        };
        public readonly Option<double?> Keep = new("--keep") { Description = "with --prefill-pruning: share of the prompt kept at the first pruning layer, in (0, 1] (default 0.5; then K^1.5 and K^2 deeper)" };

        public void AddTo(Command c)
        {
            c.Add(Method);
            c.Add(Keep);
        }

        /// <summary>The options given, checked, or null without <c>--prefill-pruning</c>.</summary>
        public Tessera.Pruning.PrefillPruningOptions? Read(ParseResult r)
        {
            string? method = r.GetValue(Method);
            double? keep = r.GetValue(Keep);
            if (method is null)
            {
                if (keep is not null) throw new ArgumentException("--keep: needs --prefill-pruning lazyllm|spatten");
                return null;
            }
            var o = new Tessera.Pruning.PrefillPruningOptions { Method = Tessera.Pruning.PrefillPruningOptions.ParseMethod(method), Keep = keep ?? 0.5 };
            o.Validate();
            return o;
        }
    }

    /// <summary><c>--speculate METHOD</c> and <c>--draft-max N</c>, added to a command together.</summary>
    internal sealed class Speculation
    {
        public readonly Option<string?> Method = new("--speculate")
        {
            Description = "speculative decoding (lossless: the same tokens, fewer forward passes): lookup (prompt/n-gram lookup), recycle (Token Recycling draft trees)",
        };
        public readonly Option<int?> DraftMax = new("--draft-max")
        {
            Description = $"most tokens drafted per verification pass, tree nodes for recycle and --tree dynamic (1 to {Tessera.Speculation.SpeculationOptions.MaxDraft}; default 8, recycle 80, dynamic 32)",
        };

        public readonly Option<string?> DraftModel = new("--draft-model", "-md")
        {
            Description = "the draft model for --speculate draft: a smaller GGUF or Hugging Face folder with the same vocabulary (implies --speculate draft)",
        };

        public readonly Option<int?> SkipLayers = new("--skip-layers")
        {
            Description = "for --speculate self: layers the drafting pass skips (default: half; which ones is calibrated on the prompt)",
        };

        public readonly Option<bool> DraftFixed = new("--draft-fixed")
        {
            Description = "always draft up to --draft-max, even where the measured cost of verifying says it does not pay",
        };

        public readonly Option<string?> Tree = new("--tree")
        {
            Description = "the drafts' shape: static (the method's own: a chain, or Token Recycling's template) or dynamic (DySpec: a tree grown by the draft's probabilities; --speculate draft or self)",
        };

        public void AddTo(Command c)
        {
            c.Add(Tree);
            c.Add(Method);
            c.Add(DraftMax);
            c.Add(DraftModel);
            c.Add(SkipLayers);
            c.Add(DraftFixed);
        }

        /// <summary>The options, or null without <c>--speculate</c> or <c>--draft-model</c>; a <c>--draft-max</c> out of
        /// range is an error either way. The draft model is not loaded yet: <see cref="LoadDraft"/> does that.</summary>
        public Tessera.Speculation.SpeculationOptions? Read(ParseResult r)
        {
            string? method = r.GetValue(Method), draft = r.GetValue(DraftModel);
            if (method is null && draft is not null) method = "draft";
            var o = new Tessera.Speculation.SpeculationOptions
            {
                Method = method is null ? default : Tessera.Speculation.SpeculationOptions.ParseMethod(method),
                DraftMax = r.GetValue(DraftMax),
                Adaptive = !r.GetValue(DraftFixed),
                SkipLayers = r.GetValue(SkipLayers),
                Tree = r.GetValue(Tree) is { } tree ? Tessera.Speculation.SpeculationOptions.ParseTree(tree) : default,
            };
            if (method is null && r.GetValue(Tree) is not null) throw new ArgumentException("--tree is for --speculate draft or self");
            if (o.SkipLayers is not null && o.Method != Tessera.Speculation.SpeculationMethod.Self)
                throw new ArgumentException("--skip-layers is for --speculate self");
            if (o.Method == Tessera.Speculation.SpeculationMethod.Draft && draft is null)
                throw new ArgumentException("--speculate draft needs --draft-model FILE");
            if (o.Method != Tessera.Speculation.SpeculationMethod.Draft && draft is not null)
                throw new ArgumentException($"--draft-model is for --speculate draft, not --speculate {method}");
            // Checked without the draft model (loaded later): as self-speculation, which shares its other rules.
            (o with { DraftModel = null, Method = o.Method == Tessera.Speculation.SpeculationMethod.Draft ? Tessera.Speculation.SpeculationMethod.Self : o.Method }).Validate();
            _draftPath = draft;
            return method is null ? null : o;
        }

        private string? _draftPath;

        /// <summary>For <c>--speculate draft</c>: loads the draft model on <paramref name="backend"/>, checks it shares
        /// <paramref name="target"/>'s vocabulary, and returns the options that use it with the loaded model (the
        /// caller disposes it); otherwise the options unchanged and null.</summary>
        public (Tessera.Speculation.SpeculationOptions? Options, LoadedModel? Draft) LoadDraft(
            Tessera.Speculation.SpeculationOptions? options, LoadedModel target, Tessera.Backends.IBackend? backend)
        {
            if (options is not { Method: Tessera.Speculation.SpeculationMethod.Draft } || _draftPath is null) return (options, null);
            var draft = LoadedModel.Load(_draftPath, backend);
            try
            {
                Tessera.Speculation.SpeculationOptions.CheckDraftModel(target.Tokenizer, draft.Tokenizer, _draftPath);
                return (options with { DraftModel = draft.Model }, draft);
            }
            catch
            {
                draft.Dispose();
                throw;
            }
        }
    }

    /// <summary>The context size to use: the option if given (checked), else the model's capped at 4096.</summary>
    public static int ResolveContext(int requested, int modelContext)
    {
        if (requested < 0) throw new ArgumentException($"--context {requested}: must be positive");
        if (requested > modelContext) throw new ArgumentException($"--context {requested}: the model supports at most {modelContext}");
        return requested > 0 ? requested : Math.Min(modelContext, 4096);
    }
}
