using System.Numerics.Tensors;
using System.Text.Json;
using Tessera.Model;
using Tessera.Sampling;

namespace Tessera.Evaluation;

/// <summary>llama.cpp's outputs for one model file and one prompt, as stored in a golden folder
/// (<c>shared/golden/MODEL/p{i}.json</c>, <c>p{i}.prompt_logits.f32</c>, <c>p{i}.greedy_logits.f32</c>).</summary>
public sealed class GoldenReference
{
    /// <summary>The prompt text.</summary>
    public required string Prompt { get; init; }
    /// <summary>llama.cpp's tokenization of the prompt.</summary>
    public required int[] PromptTokens { get; init; }
    /// <summary>llama.cpp's greedy continuation.</summary>
    public required int[] GreedyTokens { get; init; }
    /// <summary>Vocabulary size.</summary>
    public required int Vocab { get; init; }
    /// <summary>(prompt tokens, vocab) logits at every prompt position.</summary>
    public required float[] PromptLogits { get; init; }
    /// <summary>(up to 16, vocab) logits after each of the first greedy tokens.</summary>
    public required float[] GreedyLogits { get; init; }

    /// <summary>Reads prompt <paramref name="prompt"/> of the golden folder <paramref name="dir"/>.</summary>
    /// <exception cref="IOException">A file is missing or unreadable; the message names it.</exception>
    public static GoldenReference Load(string dir, int prompt)
    {
        string json = Path.Combine(dir, $"p{prompt}.json");
        if (!File.Exists(json)) throw new FileNotFoundException($"golden: {json} not found", json);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        var root = doc.RootElement;
        int[] Ints(string name) => [.. root.GetProperty(name).EnumerateArray().Select(e => e.GetInt32())];
        var g = new GoldenReference
        {
            Prompt = root.GetProperty("prompt").GetString() ?? "",
            PromptTokens = Ints("prompt_tokens"),
            GreedyTokens = Ints("greedy_tokens"),
            Vocab = root.GetProperty("n_vocab").GetInt32(),
            PromptLogits = ReadFloats(Path.Combine(dir, $"p{prompt}.prompt_logits.f32")),
            GreedyLogits = ReadFloats(Path.Combine(dir, $"p{prompt}.greedy_logits.f32")),
        };
        if (g.PromptLogits.Length != g.PromptTokens.Length * g.Vocab)
            throw new IOException($"golden: {dir}/p{prompt}.prompt_logits.f32 holds {g.PromptLogits.Length} floats, expected {g.PromptTokens.Length} x {g.Vocab}");
        return g;
    }

    private static float[] ReadFloats(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"golden: {path} not found", path);
        byte[] b = File.ReadAllBytes(path);
        var f = new float[b.Length / 4];
        Buffer.BlockCopy(b, 0, f, 0, f.Length * 4);
        return f;
    }
}

/// <summary>The outcome of one golden comparison.</summary>
/// <param name="TokensMatch">Whether the tokenizer reproduced llama.cpp's prompt tokens.</param>
/// <param name="MaxPromptNmse">Largest normalized error of the prompt logits over the positions.</param>
/// <param name="WorstPosition">Where it was.</param>
/// <param name="MaxGreedyNmse">Largest normalized error of the continuation's logits (teacher-forced).</param>
/// <param name="Compared">Greedy steps whose token was compared (clear-cut: no near-tie).</param>
/// <param name="Mismatched">Compared steps whose argmax differed from llama.cpp's.</param>
/// <param name="Steps">Greedy steps in the reference.</param>
/// <param name="Tolerance">The bound the errors were held to.</param>
public sealed record GoldenOutcome(bool TokensMatch, double MaxPromptNmse, int WorstPosition, double MaxGreedyNmse,
    int Compared, int Mismatched, int Steps, double Tolerance)
{
    /// <summary>Tokens exact, every error within the bound, every clear-cut greedy token equal.</summary>
    public bool Passed => TokensMatch && MaxPromptNmse < Tolerance && MaxGreedyNmse < Tolerance && Mismatched == 0;
}

/// <summary>
/// A model against llama.cpp's golden outputs on any backend, as the golden tests do on the CPU: tokenization exact,
/// the logits at every prompt position and along the greedy continuation (the reference's tokens fed back: teacher
/// forcing) within a normalized error per weight type, and the greedy token equal at every step that is not a
/// near-tie. Used by <c>tessera golden</c> so that the NativeAOT binary can run it on a GPU machine.
/// </summary>
public static class GoldenCheck
{
    /// <summary>
    /// Bound on sum((a-b)²)/sum(b²) per weight type, from the file name's last dash-separated part (tests/Golden/
    /// TolerancesByFile.cs explains the measured cascades behind each): f32 1e-6, f16 1e-5, bf16 1e-4, quantized 2e-3.
    /// A layout, scale or dequantization bug gives 0.1 to 1.
    /// </summary>
    public static double Tolerance(string file) => file[(file.LastIndexOf('-') + 1)..] switch
    {
        "f32" => 1e-6,
        "f16" => 1e-5,
        "bf16" => 1e-4,
        _ => 2e-3,
    };

    /// <summary>
    /// The bound for <paramref name="file"/> on <paramref name="backend"/>. The CPU backend reproduces llama.cpp's CPU
    /// arithmetic (8-bit activations for quantized weights, F16-rounded attention probabilities), so it gets
    /// <see cref="Tolerance(string)"/>. The CUDA kernels do not, by design: quantized products keep float32
    /// activations (F16 on tensor cores), attention keeps unrounded probabilities (flash attention's online softmax),
    /// reductions run in float trees. They are checked op by op against the CPU reference (the op suite), and end to
    /// end are held to 4× the CPU's bound: two results each within t of a third are within (√t + √t)² = 4t of each
    /// other (NMSE is a squared norm ratio), the bound CudaRaggedTests already holds CUDA to against the CPU.
    /// Measured on the CUDA emulator over all 72 golden cases: up to 1.2× the CPU's bound (Q2_K/Q3_K/Q5_K, whose
    /// llama.cpp activations are the coarsest), so 4t leaves a margin of about 3, and a real bug (0.1 to 1) stays
    /// 12× or more outside it.
    /// </summary>
    public static double Tolerance(string file, Backends.IBackend backend) =>
        backend is Backends.Cuda.CudaBackend ? 4 * Tolerance(file) : Tolerance(file);

    /// <summary>Runs prompt and teacher-forced greedy continuation of <paramref name="g"/> on <paramref name="m"/>.</summary>
    public static GoldenOutcome Run(LoadedModel m, GoldenReference g, double tolerance)
    {
        ArgumentNullException.ThrowIfNull(m);
        ArgumentNullException.ThrowIfNull(g);
        int vocab = g.Vocab;
        if (m.Config.VocabSize != vocab)
            throw new ArgumentException($"golden: the model has {m.Config.VocabSize} tokens, the reference {vocab}");
        bool tokensMatch = m.Tokenizer.Encode(g.Prompt, m.Tokenizer.AddBosByDefault).SequenceEqual(g.PromptTokens);
        int n = g.PromptTokens.Length;
        var logits = new float[n * vocab];
        using var state = m.Model.CreateState(n + g.GreedyTokens.Length + 1);
        m.Model.Forward(state, g.PromptTokens, logits);
        double maxPrompt = 0;
        int worst = 0;
        for (int i = 0; i < n; i++)
        {
            double e = Nmse(logits.AsSpan(i * vocab, vocab), g.PromptLogits.AsSpan(i * vocab, vocab));
            if (!(e <= maxPrompt)) { maxPrompt = e; worst = i; }  // NaN sticks
        }

        // A step whose top two logits are closer than the noise the bound allows (4 x sqrt(tol) x rms, at least
        // 0.05) may flip under any rounding difference, so its token is not compared.
        // On CUDA the continuation runs through a captured decode graph, so that golden checks it too.
        using var graph = m.Model.Backend is Backends.Cuda.CudaBackend && Backends.Cuda.CudaDecodeGraph.Enabled
            ? new Backends.Cuda.CudaDecodeGraph(m.Model, state) : null;
        int refRows = g.GreedyLogits.Length / vocab, compared = 0, mismatched = 0;
        double maxGreedy = 0;
        for (int step = 0; step < g.GreedyTokens.Length; step++)
        {
            ReadOnlySpan<float> reference = step == 0
                ? g.PromptLogits.AsSpan((n - 1) * vocab, vocab)
                : step - 1 < refRows ? g.GreedyLogits.AsSpan((step - 1) * vocab, vocab) : default;
            ReadOnlySpan<float> ours = state.Logits;
            if (!reference.IsEmpty)
            {
                double e = Nmse(ours, reference);
                if (!(e <= maxGreedy)) maxGreedy = e;
            }
            float nearTie = Math.Max(0.05f, 4 * (float)Math.Sqrt(tolerance) * MathF.Sqrt(TensorPrimitives.SumOfSquares(ours) / ours.Length));
            if (TopTwoGap(ours) >= nearTie && (reference.IsEmpty || TopTwoGap(reference) >= nearTie))
            {
                compared++;
                if (Sampler.ArgMax(ours) != g.GreedyTokens[step]) mismatched++;
            }
            if (step + 1 >= g.GreedyTokens.Length) continue;
            if (graph is null) m.Model.Forward(state, [g.GreedyTokens[step]]);
            else graph.Step(g.GreedyTokens[step]);
        }
        return new GoldenOutcome(tokensMatch, maxPrompt, worst, maxGreedy, compared, mismatched, g.GreedyTokens.Length, tolerance);
    }

    /// <summary>sum((a-b)²)/sum(b²).</summary>
    public static double Nmse(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - b[i];
            num += d * d;
            den += (double)b[i] * b[i];
        }
        return num / den;
    }

    private static float TopTwoGap(ReadOnlySpan<float> logits)
    {
        float a = float.NegativeInfinity, b = float.NegativeInfinity;
        foreach (float x in logits)
        {
            if (x > a) { b = a; a = x; }
            else if (x > b) b = x;
        }
        return a - b;
    }
}
