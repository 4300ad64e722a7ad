using Tessera.Backends.Cuda;
using Tessera.Interop.Kernels;
using Tessera.Model;

namespace Tessera.Sampling;

/// <summary>
/// Sampling on the GPU (kernels/sample_topk.cu): the logits stay in device memory and only the chosen token id
/// crosses to the host (4 bytes a token instead of the vocabulary's logits: 513 KB at a 128256-token vocabulary). The
/// kernel draws exactly as <see cref="Sampler"/> does from the same logits and the same uniform number, and this class
/// takes that number from the sampler's own generator, so a seeded generation draws the same tokens either way. Used
/// by generation and by <c>tessera bench</c>'s decode test on the CUDA backend whenever the options allow it.
/// </summary>
internal static class DeviceSampling
{
    /// <summary>False when <c>TESSERA_DEVICE_SAMPLING=0</c>: the logits are then copied to the host and sampled there
    /// (to compare the two, or to rule the kernel out). Tests set it.</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("TESSERA_DEVICE_SAMPLING") != "0";

    /// <summary>Tokens the serving scheduler has drawn on the device in this process (tests check the path ran).</summary>
    internal static long ServedTokens;

    /// <summary>Why <paramref name="options"/> need the host sampler, or null when the device draws exactly as the host
    /// would: no penalties (they depend on the tokens so far, which the host keeps), no logit bias, no log-probabilities (they need
    /// every logit), and no more candidates than the kernel sorts.</summary>
    public static string? Unsupported(SamplingOptions options, int vocabSize, bool logProbs)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (logProbs) return "log-probabilities need the logits on the host";
        if (options.RepetitionPenalty != 1 || options.FrequencyPenalty != 0 || options.PresencePenalty != 0)
            return "penalties are applied on the host";
        if (options.LogitBias is { Count: > 0 }) return "logit bias is applied on the host";
        if (!SampleTopK.Supports(vocabSize, options.TopK, options.Temperature))
            return $"top-k {options.TopK} over {vocabSize} logits is more than the {SampleTopK.MaxCandidates} candidates the device sorts";
        return null;
    }

    /// <summary>The next token from the logits the last forward pass left in <paramref name="state"/>'s device buffer,
    /// drawn as <paramref name="sampler"/>.<see cref="Sampler.Sample(Span{float})"/> would draw it (a uniform number from
    /// its generator unless greedy). The caller checked <see cref="Unsupported"/>.</summary>
    public static int Sample(CudaBackend cuda, RunState state, Sampler sampler, SamplingOptions options)
    {
        double uniform = options.Temperature > 0 ? sampler.NextUniform() : 0;
        return cuda.SampleTopK(state.LogitsBuffer, state.Logits.Length, options.TopK, options.TopP, options.MinP,
            options.Temperature, uniform);
    }

    /// <summary>The greedy token (argmax) of the logits in <paramref name="state"/>'s device buffer.</summary>
    public static int Greedy(CudaBackend cuda, RunState state) =>
        cuda.SampleTopK(state.LogitsBuffer, state.Logits.Length, 0, 1, 0, 0, 0);
}
