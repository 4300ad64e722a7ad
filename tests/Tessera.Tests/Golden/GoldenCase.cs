using System.Text.Json;

namespace Tessera.Tests.Golden;

/// <summary>llama.cpp's outputs for one model file and one prompt (see ../shared/golden/README.md).</summary>
internal sealed class GoldenCase
{
    public required string Model { get; init; }
    public required string Prompt { get; init; }
    public required int[] PromptTokens { get; init; }
    public required int[] GreedyTokens { get; init; }
    public required int Vocab { get; init; }
    /// <summary>(prompt tokens, vocab) logits at every prompt position.</summary>
    public required float[] PromptLogits { get; init; }
    /// <summary>(up to 16, vocab) logits after each of the first greedy tokens.</summary>
    public required float[] GreedyLogits { get; init; }

    public static GoldenCase Load(string model, int prompt)
    {
        string dir = SharedData.Path("golden", model);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(System.IO.Path.Combine(dir, $"p{prompt}.json")));
        var root = doc.RootElement;
        int[] Ints(string name) => root.GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();
        return new GoldenCase
        {
            Model = model,
            Prompt = root.GetProperty("prompt").GetString()!,
            PromptTokens = Ints("prompt_tokens"),
            GreedyTokens = Ints("greedy_tokens"),
            Vocab = root.GetProperty("n_vocab").GetInt32(),
            PromptLogits = ReadFloats(System.IO.Path.Combine(dir, $"p{prompt}.prompt_logits.f32")),
            GreedyLogits = ReadFloats(System.IO.Path.Combine(dir, $"p{prompt}.greedy_logits.f32")),
        };
    }

    private static float[] ReadFloats(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        var f = new float[b.Length / 4];
        Buffer.BlockCopy(b, 0, f, 0, f.Length * 4);
        return f;
    }

    /// <summary>Normalized mean squared error sum((a-b)²)/sum(b²) of <paramref name="a"/> against reference <paramref name="b"/>.</summary>
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

    /// <summary>Gap between the largest and second largest logit.</summary>
    public static float TopTwoGap(ReadOnlySpan<float> logits)
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
