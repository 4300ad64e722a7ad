namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/sample_topk.cu: temperature, top-k, top-p and min-p sampling on the device with a
/// uniform number from the host; one block, the token id written to <c>result[0]</c>.</summary>
public sealed unsafe class SampleTopK(KernelLibrary library)
{
    /// <summary>The most candidates the kernel sorts (its SAMPLE_MAX_K): top-k above this, or top-k off over a larger
    /// vocabulary, needs the host sampler.</summary>
    public const int MaxCandidates = 1024;

    private const string K = "sample_topk_f32";
    private readonly CudaFunction _f = library.Module("sample_topk").Function(K);

    /// <summary>The number of candidates the kernel sorts: 1 when greedy, else top-k (the vocabulary when off).</summary>
    public static int Candidates(int count, int topK, float temperature) =>
        temperature <= 0 ? 1 : topK > 0 && topK < count ? topK : count;

    /// <summary>Whether the device can sample with these options (see <see cref="MaxCandidates"/>).</summary>
    public static bool Supports(int count, int topK, float temperature) => Candidates(count, topK, temperature) <= MaxCandidates;

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> logits, int count, int topK, float topP, float minP, float temperature, double uniform, DeviceSpan<int> result)
    {
        Elementwise.RequirePositive(count, K, nameof(count));
        ArgumentOutOfRangeException.ThrowIfNegative(topK);
        if (!float.IsFinite(temperature)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, $"kernel '{K}': temperature must be a number");
        if (!(topP > 0 && topP <= 1)) throw new ArgumentOutOfRangeException(nameof(topP), topP, $"kernel '{K}': top-p must be in (0, 1]");
        if (!(minP >= 0 && minP <= 1)) throw new ArgumentOutOfRangeException(nameof(minP), minP, $"kernel '{K}': min-p must be in [0, 1]");
        if (!(uniform >= 0 && uniform < 1)) throw new ArgumentOutOfRangeException(nameof(uniform), uniform, $"kernel '{K}': the uniform number must be in [0, 1)");
        int c = Candidates(count, topK, temperature);
        if (c > MaxCandidates)
            throw new ArgumentOutOfRangeException(nameof(topK), topK,
                $"kernel '{K}': {c} candidates (top-k {topK} over {count} logits); the device sorts at most {MaxCandidates}");
        logits.RequireLength(count, K, nameof(logits));
        result.RequireLength(1, K, nameof(result));
    }

    /// <summary>result[0] = the token drawn from logits[0..count) as the CPU Sampler draws it with <paramref name="uniform"/>.</summary>
    public void Launch(CudaStream stream, DeviceSpan<float> logits, int count, int topK, float topP, float minP, float temperature, double uniform, DeviceSpan<int> result)
    {
        Check(logits, count, topK, topP, minP, temperature, uniform, result);
        ulong pl = logits.Pointer, pr = result.Pointer;
        int n = count, k = topK;
        float p = topP, m = minP, t = temperature;
        double u = uniform;
        void** args = stackalloc void*[] { &pl, &n, &k, &p, &m, &t, &u, &pr };
        _f.Launch(LaunchShape.Linear(1, 1024), stream, args);
    }
}
