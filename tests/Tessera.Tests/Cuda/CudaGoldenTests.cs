using NUnit.Framework;
using Tessera.Evaluation;
using Tessera.Model;

namespace Tessera.Tests.Cuda;

/// <summary>
/// The CUDA backend against llama.cpp's golden outputs, end to end (prompt logits through the prefill GEMM and flash
/// attention, the teacher-forced continuation through the captured decode graph), as <c>tessera golden --backend
/// cuda</c> does for every model. A subset here keeps the emulator pass short: one file per kernel family.
/// </summary>
[Category("Cuda")]  // run a second time on the CUDA emulator by ./build.sh test
public class CudaGoldenTests
{
    [TestCase("tinystories-656k-q8_0")]    // gemv/gemm q8_0, the real model
    [TestCase("tinystories-656k-f16")]     // gemv/gemm f16
    [TestCase("rand-llama-d256-q4_k_m")]   // q4_k and q6_k
    [TestCase("rand-llama-d256-bf16")]     // bf16 mma
    [TestCase("rand-llama-d256-q5_k_m")]   // a type without its own kernel (the dequantizing path)
    public void Logits_match_llama_cpp_on_cuda(string name)
    {
        var b = CudaDevice.Require();
        using var m = LoadedModel.Load(SharedData.Model(name + ".gguf"), b);
        double tol = GoldenCheck.Tolerance(name, b);
        string dir = SharedData.Path("golden", name);
        int cases = 0;
        for (int p = 0; File.Exists(Path.Combine(dir, $"p{p}.json")); p++, cases++)
        {
            var o = GoldenCheck.Run(m, GoldenReference.Load(dir, p), tol);
            Assert.That(o.TokensMatch, $"p{p}: tokenization");
            Assert.That(o.MaxPromptNmse, Is.LessThan(tol), $"p{p}: prompt logits (worst position {o.WorstPosition})");
            Assert.That(o.MaxGreedyNmse, Is.LessThan(tol), $"p{p}: greedy continuation logits");
            Assert.That(o.Mismatched, Is.Zero, $"p{p}: greedy tokens differ at {o.Mismatched} of {o.Compared} compared steps");
            Assert.That(o.Compared, Is.GreaterThan(0), $"p{p}: no greedy step was compared");
        }
        Assert.That(cases, Is.EqualTo(3), "golden prompts found");
    }
}
