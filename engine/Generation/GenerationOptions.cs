using Tessera.Sampling;
using Tessera.Speculation;

namespace Tessera.Generation;

/// <summary>What to generate and when to stop.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate. Default 128.</summary>
    public int MaxTokens { get; init; } = 128;
    /// <summary>How tokens are chosen.</summary>
    public SamplingOptions Sampling { get; init; } = new();
    /// <summary>Stop when the text produced contains one of these (the stop string is not returned).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    /// <summary>Stop at the model's end-of-generation tokens (EOS, EOT). Default true.</summary>
    public bool StopAtEndOfGeneration { get; init; } = true;
    /// <summary>Render control tokens as their text (llama.cpp's <c>--special</c>) and show what the model writes
    /// verbatim, including an end-of-generation marker it spells out in ordinary tokens (TinyStories' text
    /// "&lt;|end_story|&gt;" before its EOS). Default false: control tokens are not rendered and a spelled-out end
    /// marker ends generation, unshown, as the end-of-generation token does.</summary>
    public bool RenderSpecial { get; init; }
    /// <summary>Report each generated token's log-probability and this many most likely alternatives (0 to 20);
    /// null (the default) reports none and costs nothing.</summary>
    public int? LogProbs { get; init; }
    /// <summary>Text that comes after the generated text (OpenAI's and llama.cpp's <c>suffix</c>, <c>--suffix</c>): the
    /// prompt becomes a fill-in-the-middle request (<see cref="Tokenization.Tokenizer.EncodeInfill"/>), so the model
    /// writes what goes between the prompt and this. Needs a model with FIM tokens. Null (the default): plain continuation.</summary>
    public string? Suffix { get; init; }
    /// <summary>Also report the prompt's tokens' log-probabilities (OpenAI's <c>echo</c> with <c>logprobs</c>; with
    /// <see cref="MaxTokens"/> 0 it scores a text): every prompt position is computed (no prefix-cache reuse for it)
    /// and they arrive on <see cref="Api.GenerationChunk.PromptLogProbs"/>. Needs <see cref="LogProbs"/>. Served by
    /// <see cref="Api.InferenceEngine"/>'s scheduler.</summary>
    public bool PromptLogProbs { get; init; }
    /// <summary>Independent continuations of the one prompt (OpenAI's <c>n</c>, 1 to <see cref="MaxChoices"/>): the prompt
    /// is computed once and each choice forks its KV cache; choice <c>i</c> samples with seed <c>Seed + i</c>. Default 1.
    /// Served by <see cref="Api.InferenceEngine"/>'s scheduler (TextGenerator runs one).</summary>
    public int Choices { get; init; } = 1;
    /// <summary>Most <see cref="Choices"/> per request.</summary>
    public const int MaxChoices = 16;
    /// <summary>A grammar the output must follow (<c>--grammar</c>, <c>--regex</c>, <c>--json-schema</c>, <c>--json</c>;
    /// OpenAI's <c>response_format</c>): every token is drawn exactly from the model's distribution restricted to
    /// the tokens the grammar allows next, and generation ends when the grammar is complete and nothing may follow.
    /// Null (the default) for none.</summary>
    public Constraints.Grammar? Constraint { get; init; }
    /// <summary>Functions the model may call (chat only; OpenAI's <c>tools</c> and <c>tool_choice</c>): listed in the
    /// prompt, a call drawn under their parameters' schemas; <see cref="Api.GenerationResult.ToolCall"/> returns it.
    /// Null (the default) for none. Not together with <see cref="Constraint"/> unless the choice is none.</summary>
    public Chat.ChatTools? Tools { get; init; }
    /// <summary>Cautious Next Token Prediction (<c>--cautious</c>): where the sampling distribution's entropy is high,
    /// sample several trial continuations up to punctuation and keep the one of lowest perplexity. Null (the default)
    /// for plain sampling. Sampling only (temperature above 0); not with penalties, logit bias, a constraint, token
    /// healing, speculation or log-probabilities. Served by <see cref="TextGenerator"/> and by
    /// <see cref="Api.InferenceEngine"/>'s scheduler (each trial round one forest of the request's rows in a shared step),
    /// draw for draw alike while a step holds 128 rows beside one for every other sequence (the defaults: 256 tokens
    /// per step, 16 sequences); a smaller step shortens the trials.</summary>
    public CautiousOptions? Cautious { get; init; }
    /// <summary>Token healing (<c>--token-healing</c>, the server's <c>token_healing</c>): back the prompt up by its
    /// last token and make the output start with that token's text, so a prompt cut mid-word ("Once upon a ti") is
    /// continued as the word ("me"), not after a token boundary the model never saw there. The removed text is not
    /// output again. Off by default (see <see cref="TokenHealing"/>); ignored under another constraint.</summary>
    public bool TokenHealing { get; init; }
    /// <summary>Speculative decoding (<c>--speculate</c>): a proposer guesses the next tokens and the model checks
    /// them all in one pass. Lossless: the tokens are the ones decoding without it gives (the same greedy output, the
    /// same draws for a seed). Null (the default) decodes one token per pass.</summary>
    public SpeculationOptions? Speculation { get; init; }

    /// <summary>A cap on the positions the sequence's KV cache holds (<c>--kv-budget</c>, <c>--kv-policy</c>,
    /// <c>--kv-sinks</c>): when full, the policy drops the positions it ranks lowest, so a long prompt or generation
    /// runs in bounded memory (see <see cref="Kv.KvBudget"/>). Null (the default) keeps every position.</summary>
    public Kv.KvBudgetOptions? KvBudget { get; init; }

    /// <summary>Prompt pruning (<c>--prefill-pruning lazyllm|spatten --keep K</c>): the prompt's deep layers run only
    /// its best-ranked tokens, for a faster first token (see <see cref="Pruning.PrefillPruningOptions"/>). Null (the
    /// default) runs every token through every layer.</summary>
    public Pruning.PrefillPruningOptions? PrefillPruning { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the option out of range.</summary>
    public void Validate()
    {
        if (PrefillPruning is not null)
        {
            PrefillPruning.Validate();
            string? clash = KvBudget is not null ? "--kv-budget" : Speculation is not null ? "--speculate" : Cautious is not null ? "--cautious"
                : PromptLogProbs ? "prompt log-probabilities (echo)" : Choices > 1 ? "several choices (n)" : null;
            if (clash is not null) throw new ArgumentException($"--prefill-pruning: not together with {clash}", nameof(PrefillPruning));
        }
        if (KvBudget is not null)
        {
            KvBudget.Validate();
            string? clash = Speculation is not null ? "--speculate" : Cautious is not null ? "--cautious" : PromptLogProbs ? "prompt log-probabilities (echo)"
                : Choices > 1 ? "several choices (n)" : null;
            if (clash is not null) throw new ArgumentException($"--kv-budget: not together with {clash} (its trees, forks or rescoring passes need every position cached)", nameof(KvBudget));
        }
        if (MaxTokens < 0) throw new ArgumentException($"--max-tokens {MaxTokens}: must be 0 or more", nameof(MaxTokens));
        if (StopStrings.Any(string.IsNullOrEmpty)) throw new ArgumentException("--stop: a stop string may not be empty", nameof(StopStrings));
        if (Choices is < 1 or > MaxChoices) throw new ArgumentException($"n {Choices}: must be 1 to {MaxChoices} choices", nameof(Choices));
        if (LogProbs is < 0 or > 20) throw new ArgumentException($"logprobs {LogProbs}: must be 0 to 20", nameof(LogProbs));
        if (PromptLogProbs && LogProbs is null) throw new ArgumentException("prompt log-probabilities need logprobs (how many alternatives, 0 or more)", nameof(PromptLogProbs));
        if (Suffix is not null && (TokenHealing || PromptLogProbs))
            throw new ArgumentException($"suffix with {(TokenHealing ? "token healing" : "prompt log-probabilities (echo)")}: the prompt runs as a fill-in-the-middle request, not as given", nameof(Suffix));
        if (PromptLogProbs && TokenHealing) throw new ArgumentException("prompt log-probabilities with token healing: the healed prompt is not the one given; ask for one", nameof(PromptLogProbs));
        Sampling.Validate();
        Speculation?.Validate();
        if (Cautious is not null)
        {
            Cautious.Validate();
            string? clash = Speculation is not null ? "--speculate" : Constraint is not null ? "a constraint" : TokenHealing ? "--token-healing"
                : LogProbs is not null ? "logprobs" : Sampling.LogitBias is { Count: > 0 } ? "--logit-bias"
                : Tessera.Sampling.Processors.RepetitionPenalties.Applies(Sampling) ? "repetition penalties" : null;
            if (clash is not null) throw new ArgumentException($"--cautious: not together with {clash} (its trials draw from the plain sampling distribution)", nameof(Cautious));
            if (Sampling.Temperature <= 0) throw new ArgumentException("--cautious: needs sampling (temperature above 0); greedy decoding is never uncertain", nameof(Cautious));
        }
    }
}

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>The model produced an end-of-generation token.</summary>
    EndOfGeneration,
    /// <summary>A stop string appeared.</summary>
    StopString,
    /// <summary>The token limit was reached.</summary>
    MaxTokens,
    /// <summary>The context is full.</summary>
    ContextFull,
}

/// <summary>One step of generation: the token and the text that became final with it (may be empty). At the end,
/// text held back (an incomplete character, a possible stop-string start) comes with <c>Token</c> = -1.</summary>
public readonly record struct GeneratedToken(int Token, string Text)
{
    /// <summary>The token's log-probability, when <see cref="GenerationOptions.LogProbs"/> asked for it.</summary>
    public TokenLogProb? LogProb { get; init; }
}
