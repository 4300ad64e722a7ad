using System.Diagnostics;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Tokenization;

namespace Tessera.Generation;

/// <summary>Timing and counts of one generation.</summary>
public sealed class GenerationStats
{
    /// <summary>Tokens in the prompt.</summary>
    public int PromptTokens { get; internal set; }
    /// <summary>Tokens generated.</summary>
    public int GeneratedTokens { get; internal set; }
    /// <summary>Time to run the prompt (prefill).</summary>
    public TimeSpan PromptTime { get; internal set; }
    /// <summary>Time spent generating after the prompt.</summary>
    public TimeSpan GenerationTime { get; internal set; }
    /// <summary>Why it stopped.</summary>
    public FinishReason FinishReason { get; internal set; }
    /// <summary>Prompt tokens per second.</summary>
    public double PromptTokensPerSecond => PromptTokens / Math.Max(PromptTime.TotalSeconds, 1e-9);
    /// <summary>Generated tokens per second (the first token's forward pass counts in the prompt time).</summary>
    public double GenerationTokensPerSecond => GeneratedTokens / Math.Max(GenerationTime.TotalSeconds, 1e-9);
}

/// <summary>
/// Runs a prompt and generates from it, one sequence: prefill in one batched pass, then one token per step.
/// </summary>
public sealed class TextGenerator(LlamaModel model, Tokenizer tokenizer)
{
    /// <summary>
    /// Prefills <paramref name="prompt"/> into <paramref name="state"/> (which may already hold earlier turns) and
    /// yields generated tokens with the text each completes. <paramref name="stats"/> is filled as it goes.
    /// On the CUDA backend the token is drawn on the device when the options allow it (no penalties or
    /// log-probabilities; <c>TESSERA_DEVICE_SAMPLING=0</c> turns it off), and <c>state.Logits</c> is then not updated.
    /// </summary>
    public IEnumerable<GeneratedToken> Generate(RunState state, IReadOnlyList<int> prompt, GenerationOptions options,
        GenerationStats? stats = null, CancellationToken cancellation = default)
    {
        options.Validate();
        stats ??= new GenerationStats();
        if (prompt.Count == 0) throw new ArgumentException("the prompt is empty: give at least one token (or let the tokenizer add BOS)", nameof(prompt));
        if (state.Position + prompt.Count > state.ContextSize)
            throw new ArgumentException(
                $"the prompt is {prompt.Count} tokens, but only {state.ContextSize - state.Position} of the context of {state.ContextSize} are free", nameof(prompt));
        foreach (int t in prompt)
            if ((uint)t >= (uint)model.Config.VocabSize)
                throw new ArgumentException($"prompt token {t} is outside the vocabulary (0..{model.Config.VocabSize - 1})", nameof(prompt));

        var sampler = new Sampler(options.Sampling, model.Config.VocabSize);
        foreach (int t in prompt) sampler.Accept(t);
        var decoder = new Utf8StreamDecoder(tokenizer);
        var stops = new StopStringFilter(options.StopStrings);

        // On CUDA the device samples whenever it can draw exactly as the host would: only token ids cross.
        var cuda = model.Backend as Backends.Cuda.CudaBackend;
        bool onDevice = cuda is not null && DeviceSampling.Enabled
            && DeviceSampling.Unsupported(options.Sampling, model.Config.VocabSize, options.LogProbs is not null) is null;
        state.LogitsStayOnDevice = onDevice;
        try
        {
            var sw = Stopwatch.StartNew();
            model.Forward(state, prompt.ToArray());
            stats.PromptTokens = prompt.Count;
            stats.PromptTime = sw.Elapsed;
            sw.Restart();

            int[] one = new int[1];
            // On CUDA the decode step is captured once as a graph and replayed per token, as bench and golden run it.
            using var graph = cuda is not null && Backends.Cuda.CudaDecodeGraph.Enabled
                ? new Backends.Cuda.CudaDecodeGraph(model, state) : null;
            // Log-probabilities come from the raw logits; the sampler's penalties change them in place, so keep a copy.
            float[]? raw = options.LogProbs is null ? null : new float[state.Logits.Length];
            stats.FinishReason = FinishReason.MaxTokens;
            for (int i = 0; i < options.MaxTokens; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                if (raw != null) state.Logits.CopyTo(raw, 0);
                int token = onDevice ? DeviceSampling.Sample(cuda!, state, sampler, options.Sampling) : sampler.Sample(state.Logits);
                var logProb = raw is null ? null : TokenLogProb.Compute(raw, token, options.LogProbs!.Value);
                sampler.Accept(token);
                stats.GeneratedTokens++;
                if (options.StopAtEndOfGeneration && tokenizer.IsEndOfGeneration(token))
                {
                    stats.FinishReason = FinishReason.EndOfGeneration;
                    break;
                }
                var (text, stopped) = stops.Add(decoder.Add(token));
                if (stopped)
                {
                    yield return new GeneratedToken(token, text) { LogProb = logProb };
                    stats.FinishReason = FinishReason.StopString;
                    break;
                }
                yield return new GeneratedToken(token, text) { LogProb = logProb };
                if (state.Position >= state.ContextSize)
                {
                    stats.FinishReason = FinishReason.ContextFull;
                    break;
                }
                if (graph is null) { one[0] = token; model.Forward(state, one); }
                else graph.Step(token);
                stats.GenerationTime = sw.Elapsed;
            }
            stats.GenerationTime = sw.Elapsed;
            if (stats.FinishReason != FinishReason.StopString)
            {
                string tail = stops.Add(decoder.Flush()).Release + stops.Flush();
                if (tail.Length > 0) yield return new GeneratedToken(-1, tail);
            }
        }
        finally
        {
            state.LogitsStayOnDevice = false;
        }
    }
}
