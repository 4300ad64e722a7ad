using NUnit.Framework;
using Tessera.Backends;
using Tessera.Generation;
using Tessera.Interop.Kernels;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Tests.Cuda;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Generation;

/// <summary>Sampling where the logits are (the GPU): when it applies, that the forward pass can leave the logits in
/// the backend's buffer, and (GPU only) that generation draws the same tokens on the device as on the host.</summary>
[Category("Cuda")]  // run a second time on the CUDA emulator by ./build.sh test
public class DeviceSamplingTests
{
    [Test]
    public void Plain_top_k_top_p_min_p_and_greedy_sample_on_the_device()
    {
        Assert.That(DeviceSampling.Unsupported(new SamplingOptions(), 32000, logProbs: false), Is.Null);
        Assert.That(DeviceSampling.Unsupported(SamplingOptions.Greedy, 128256, logProbs: false), Is.Null);
        // Greedy needs no sort whatever top-k says.
        Assert.That(DeviceSampling.Unsupported(SamplingOptions.Greedy with { TopK = 0 }, 128256, logProbs: false), Is.Null);
        Assert.That(DeviceSampling.Unsupported(new SamplingOptions { TopK = SampleTopK.MaxCandidates }, 128256, logProbs: false), Is.Null);
    }

    [Test]
    public void Penalties_log_probabilities_and_too_many_candidates_stay_on_the_host()
    {
        Assert.That(DeviceSampling.Unsupported(new SamplingOptions { RepetitionPenalty = 1.1f }, 32000, false), Does.Contain("penalties"));
        Assert.That(DeviceSampling.Unsupported(new SamplingOptions { FrequencyPenalty = 0.5f }, 32000, false), Does.Contain("penalties"));
        Assert.That(DeviceSampling.Unsupported(new SamplingOptions { PresencePenalty = 0.5f }, 32000, false), Does.Contain("penalties"));
        Assert.That(DeviceSampling.Unsupported(new SamplingOptions(), 32000, logProbs: true), Does.Contain("log-probabilities"));
        // Top-k off at temperature > 0 means sorting the whole vocabulary.
        Assert.That(DeviceSampling.Unsupported(new SamplingOptions { TopK = 0 }, 32000, false), Does.Contain("32000 logits"));
        Assert.That(DeviceSampling.Unsupported(new SamplingOptions { TopK = SampleTopK.MaxCandidates + 1 }, 128256, false), Does.Contain("candidates"));
        // A vocabulary no larger than the kernel's sort is fine even with top-k off.
        Assert.That(DeviceSampling.Unsupported(new SamplingOptions { TopK = 0 }, SampleTopK.MaxCandidates, false), Is.Null);
    }

    [Test]
    public void A_forward_pass_that_keeps_its_logits_on_the_device_leaves_them_in_the_buffer_only()
    {
        // On the CPU the "device" buffer is host memory, so both sides of the flag can be read.
        var m = ModelCache.Get("tinystories-656k-q8_0.gguf");
        int[] prompt = [.. m.Tokenizer.Encode("Once upon a time", true)];
        using var normal = m.Model.CreateState(32);
        using var kept = m.Model.CreateState(32);
        m.Model.Forward(normal, prompt);
        kept.LogitsStayOnDevice = true;
        m.Model.Forward(kept, prompt);
        Assert.That(kept.Logits, Is.All.EqualTo(0f), "state.Logits is not written");
        var buffer = new float[normal.Logits.Length];
        m.Model.Backend.Read(kept.LogitsBuffer, 0, buffer);
        Assert.That(buffer, Is.EqualTo(normal.Logits), "the logits are in the backend's buffer");
        Assert.That(normal.Logits, Has.Some.Not.EqualTo(0f));
    }

    [TestCase(0f, 0, 1f, 0f)]
    [TestCase(0.8f, 40, 0.95f, 0.05f)]
    [TestCase(1.5f, 200, 0.9f, 0f)]
    public void On_the_GPU_generation_draws_the_same_tokens_on_the_device_as_on_the_host(float temperature, int topK, float topP, float minP)
    {
        var b = CudaDevice.Require();
        using var m = LoadedModel.Load(SharedData.Model("tinystories-656k-q8_0.gguf"), b);
        var o = new GenerationOptions
        {
            MaxTokens = 48, StopAtEndOfGeneration = false,
            Sampling = new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, Seed = 7 },
        };
        Assert.That(DeviceSampling.Unsupported(o.Sampling, m.Config.VocabSize, false), Is.Null);
        List<int> Run(bool onDevice)
        {
            bool was = DeviceSampling.Enabled;
            DeviceSampling.Enabled = onDevice;
            try
            {
                using var state = m.Model.CreateState(128);
                return new TextGenerator(m.Model, m.Tokenizer).Generate(state, m.Tokenizer.Encode("Once upon a time", true), o)
                    .Where(s => s.Token >= 0).Select(s => s.Token).ToList();
            }
            finally { DeviceSampling.Enabled = was; }
        }
        var host = Run(false);
        var device = Run(true);
        Assert.That(host, Has.Count.EqualTo(48));
        // The same logits (the same kernels ran) and the same uniform draws: the same tokens.
        Assert.That(device, Is.EqualTo(host));
    }
}
