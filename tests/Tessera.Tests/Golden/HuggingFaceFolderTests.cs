using NUnit.Framework;
using Tessera.Model;

namespace Tessera.Tests.Golden;

/// <summary>
/// The TinyStories Hugging Face folder (F32 safetensors, rotate-half RoPE on unpermuted Q/K, tied embedding stored
/// only as lm_head) against tinystories-656k-f32.gguf (the same model after llama.cpp's converter and Q8_0 rounding,
/// Q/K rows permuted for adjacent-pair RoPE).
/// </summary>
public class HuggingFaceFolderTests
{
    private static LoadedModel Hf => ModelCache.Get(SharedData.Model("tinystories-656k"));
    private static LoadedModel Gguf => ModelCache.Get("tinystories-656k-f32.gguf");

    [Test]
    public void ConfigComesFromConfigJson()
    {
        var c = Hf.Config;
        Assert.That((c.Dim, c.Layers, c.Heads, c.KvHeads, c.FfnDim, c.VocabSize, c.ContextLength), Is.EqualTo((128, 2, 8, 4, 384, 2048, 512)));
        Assert.That(c.RopeLayout, Is.EqualTo(RopeLayout.RotateHalf));
        Assert.That(c.TiedEmbeddings, Is.True);
        Assert.That(Hf.Weights.Output, Is.SameAs(Hf.Weights.TokenEmbedding));
        Assert.That(Hf.Format, Is.EqualTo("safetensors"));
    }

    [TestCase(0)]
    [TestCase(2)]
    public void LogitsAgreeWithTheGgufUpToWeightRounding(int prompt)
    {
        var g = GoldenCase.Load("tinystories-656k-f32", prompt);
        var tokens = Hf.Tokenizer.Encode(g.Prompt, true).ToArray();
        Assert.That(tokens, Is.EqualTo(g.PromptTokens), "tokenizer.json agrees with the GGUF vocabulary on this prompt");
        int v = g.Vocab;
        var a = new float[tokens.Length * v];
        var b = new float[tokens.Length * v];
        using (var s = Hf.Model.CreateState(64)) Hf.Model.Forward(s, tokens, a);
        using (var s = Gguf.Model.CreateState(64)) Gguf.Model.Forward(s, tokens, b);
        // The GGUF's weights are the HF weights rounded to Q8_0 (relative error ~0.4% per weight): logits differ by
        // about that, NMSE of order 1e-4. A RoPE layout or Q/K permutation mistake gives order 1e-1 or worse.
        for (int i = 0; i < tokens.Length; i++)
        {
            double e = GoldenCase.Nmse(a.AsSpan(i * v, v), b.AsSpan(i * v, v));
            TestContext.Out.WriteLine($"position {i}: NMSE {e:E2}");
            Assert.That(e, Is.LessThan(1e-3), $"position {i}");
        }
    }

    [Test]
    public void GreedyChoicesAgreeWhereTheyAreClearCut()
    {
        // Both models are fed the same tokens (the HF model's greedy choices); at every step where both have a clear
        // winner (top-two gap above 0.2, well over the ~0.05 logit noise of Q8_0 weight rounding) they must agree.
        var g = GoldenCase.Load("tinystories-656k-f32", 0);
        using var a = Hf.Model.CreateState(128);
        using var b = Gguf.Model.CreateState(128);
        Hf.Model.Forward(a, g.PromptTokens);
        Gguf.Model.Forward(b, g.PromptTokens);
        int compared = 0;
        var text = new List<int>();
        for (int step = 0; step < 48; step++)
        {
            int ta = Sampling.Sampler.ArgMax(a.Logits), tb = Sampling.Sampler.ArgMax(b.Logits);
            if (Math.Min(GoldenCase.TopTwoGap(a.Logits), GoldenCase.TopTwoGap(b.Logits)) > 0.2f)
            {
                Assert.That(tb, Is.EqualTo(ta), $"step {step}");
                compared++;
            }
            text.Add(ta);
            Hf.Model.Forward(a, [ta]);
            Gguf.Model.Forward(b, [ta]);
        }
        TestContext.Out.WriteLine($"{compared}/48 clear-cut steps agree; HF text: {Hf.Tokenizer.Decode(text.ToArray())}");
        Assert.That(compared, Is.GreaterThanOrEqualTo(24));
    }
}
