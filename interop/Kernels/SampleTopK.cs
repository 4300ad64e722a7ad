namespace Tessera.Interop.Kernels;

/// <summary>Launcher of kernels/sample_topk.cu: temperature, top-k, top-p and min-p sampling on the device with a
/// uniform number from the host; one block, the token id written to <c>result[0]</c>.</summary>
public sealed unsafe class SampleTopK(KernelLibrary library)
{
    /// <summary>The most candidates the kernel sorts (its SAMPLE_MAX_K): top-k above this, or top-k off over a larger
    /// vocabulary, needs the host sampler.</summary>
    public const int MaxCandidates = 1024;

    private const string K = "sample_topk_f32";
    private const string KRows = "sample_topk_f32_rows";
    private readonly CudaFunction _f = library.Module("sample_topk").Function(K);
    private readonly CudaFunction _rows = library.Module("sample_topk").Function(KRows);

    /// <summary>Ints per request of <see cref="LaunchRows"/> (see <see cref="Pack"/>).</summary>
    public const int RequestInts = 8;

    /// <summary>The number of candidates the kernel sorts: 1 when greedy, else top-k (the vocabulary when off).</summary>
    public static int Candidates(int count, int topK, float temperature) =>
        temperature <= 0 ? 1 : topK > 0 && topK < count ? topK : count;

    /// <summary>Whether the device can sample with these options (see <see cref="MaxCandidates"/>).</summary>
    public static bool Supports(int count, int topK, float temperature) => Candidates(count, topK, temperature) <= MaxCandidates;

    /// <summary>Checks the arguments of <see cref="Launch"/>.</summary>
    internal static void Check(DeviceSpan<float> logits, int count, int topK, float topP, float minP, float temperature, double uniform, DeviceSpan<int> result)
    {
        CheckOptions(count, topK, topP, minP, temperature, uniform);
        logits.RequireLength(count, K, nameof(logits));
        result.RequireLength(1, K, nameof(result));
    }

    // The options of one draw, as the kernel expects them.
    private static void CheckOptions(int count, int topK, float topP, float minP, float temperature, double uniform)
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

    /// <summary>Writes <paramref name="request"/> into <paramref name="destination"/> (<see cref="RequestInts"/> ints)
    /// in the layout <c>sample_topk_f32_rows</c> reads, after checking it as <see cref="Launch"/> checks its
    /// arguments and that its row is one of <paramref name="logitRows"/>.</summary>
    public static void Pack(Span<int> destination, SampleRequest request, int count, int logitRows)
    {
        if (destination.Length < RequestInts)
            throw new ArgumentException($"kernel '{KRows}': a request takes {RequestInts} ints, the destination has {destination.Length}", nameof(destination));
        if ((uint)request.Row >= (uint)logitRows)
            throw new ArgumentOutOfRangeException(nameof(request), request.Row, $"kernel '{KRows}': logits row {request.Row} is outside the {logitRows} rows");
        CheckOptions(count, request.TopK, request.TopP, request.MinP, request.Temperature, request.Uniform);
        long u = BitConverter.DoubleToInt64Bits(request.Uniform);
        destination[0] = request.Row;
        destination[1] = request.TopK;
        destination[2] = BitConverter.SingleToInt32Bits(request.TopP);
        destination[3] = BitConverter.SingleToInt32Bits(request.MinP);
        destination[4] = BitConverter.SingleToInt32Bits(request.Temperature);
        destination[5] = (int)u;
        destination[6] = (int)(u >> 32);
        destination[7] = 0;
    }

    /// <summary>result[i] = the token drawn for request i of <paramref name="requests"/> (<paramref name="draws"/>
    /// requests packed by <see cref="Pack"/>, already on the device) from its row of <paramref name="logits"/>
    /// (<paramref name="logitRows"/> rows of <paramref name="count"/>), one block per draw.</summary>
    public void LaunchRows(CudaStream stream, DeviceSpan<float> logits, int count, int logitRows, DeviceSpan<int> requests, int draws, DeviceSpan<int> result)
    {
        Elementwise.RequirePositive(count, KRows, nameof(count));
        Elementwise.RequirePositive(logitRows, KRows, nameof(logitRows));
        Elementwise.RequirePositive(draws, KRows, nameof(draws));
        logits.RequireLength((long)logitRows * count, KRows, nameof(logits));
        requests.RequireLength((long)draws * RequestInts, KRows, nameof(requests));
        result.RequireLength(draws, KRows, nameof(result));
        ulong pl = logits.Pointer, pq = requests.Pointer, pr = result.Pointer;
        int n = count;
        void** args = stackalloc void*[] { &pl, &n, &pq, &pr };
        _rows.Launch(LaunchShape.Linear((uint)draws, 1024), stream, args);
    }
}

/// <summary>One draw of <see cref="SampleTopK.LaunchRows"/>: which logits row, the sampling options and the uniform
/// number in [0, 1) (ignored when greedy: temperature 0 or below).</summary>
public readonly record struct SampleRequest(int Row, int TopK, float TopP, float MinP, float Temperature, double Uniform);
