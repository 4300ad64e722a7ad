using NUnit.Framework;
using Tessera.Backends.Cuda;
using Tessera.Model;

namespace Tessera.Tests.Cuda;

/// <summary>The captured decode step against the same steps launched op by op (on a GPU or the CUDA emulator; Ignored
/// without either).</summary>
[Category("Cuda")]  // run a second time on the CUDA emulator by ./build.sh test
public class CudaDecodeGraphTests
{
    [Test]
    public void Replayed_steps_give_the_logits_of_eager_steps_bit_for_bit()
    {
        var b = CudaDevice.Require();
        using var m = LoadedModel.Load(SharedData.Model("tinystories-656k-q8_0.gguf"), b);
        // Token ids of this model (its vocabulary has 2048 entries).
        int[] prompt = [.. m.Tokenizer.Encode("Once upon a time", true)];
        int[] next = [.. m.Tokenizer.Encode(" there was a little girl named Lily. She liked to play", false)];
        using var eager = m.Model.CreateState(64);
        using var graphed = m.Model.CreateState(64);
        m.Model.Forward(eager, prompt);
        m.Model.Forward(graphed, prompt);
        using var graph = new CudaDecodeGraph(m.Model, graphed);
        foreach (int t in next)
        {
            m.Model.Forward(eager, [t]);
            graph.Step(t);
            // Same kernels in the same order; the graph's attention has more (empty) splits, which combine skips.
            Assert.That(graphed.Logits, Is.EqualTo(eager.Logits), $"logits after token {t} at position {eager.Position - 1}");
            Assert.That(graphed.Position, Is.EqualTo(eager.Position));
        }
        Assert.That(graph.Captured);

        // Rewound, the same graph replays from an earlier position (the position lives in device memory).
        eager.Rewind(prompt.Length);
        graphed.Rewind(prompt.Length);
        m.Model.Forward(eager, [next[0]]);
        graph.Step(next[0]);
        Assert.That(graphed.Logits, Is.EqualTo(eager.Logits));
    }

    [Test]
    public void Two_states_keep_their_own_graphs()
    {
        var b = CudaDevice.Require();
        using var m = LoadedModel.Load(SharedData.Model("tinystories-656k-q8_0.gguf"), b);
        int[] a = [.. m.Tokenizer.Encode("Once upon a time", true)], c = [.. m.Tokenizer.Encode("The little dog ran away", true)];
        int len = Math.Min(a.Length, c.Length);
        (a, c) = (a[..len], c[..len]);
        Assert.That(a, Is.Not.EqualTo(c));
        using var sa = m.Model.CreateState(32);
        using var sc = m.Model.CreateState(32);
        using var ga = new CudaDecodeGraph(m.Model, sa);
        using var gc = new CudaDecodeGraph(m.Model, sc);
        for (int i = 0; i < a.Length; i++) { ga.Step(a[i]); gc.Step(c[i]); }  // interleaved: each replays its own buffers
        using var ea = m.Model.CreateState(32);
        using var ec = m.Model.CreateState(32);
        // Token by token, as the graphs ran (a batched prompt would take the gemm and flash attention kernels).
        foreach (int t in a) m.Model.Forward(ea, [t]);
        foreach (int t in c) m.Model.Forward(ec, [t]);
        Assert.That(sa.Logits, Is.EqualTo(ea.Logits), "state a");
        Assert.That(sc.Logits, Is.EqualTo(ec.Logits), "state c");
        Assert.That(sc.Logits, Is.Not.EqualTo(sa.Logits));
    }

    [Test]
    public void A_full_context_is_refused_before_anything_runs()
    {
        var b = CudaDevice.Require();
        using var m = LoadedModel.Load(SharedData.Model("tinystories-656k-q8_0.gguf"), b);
        using var state = m.Model.CreateState(3);
        using var graph = new CudaDecodeGraph(m.Model, state);
        int[] ids = [.. m.Tokenizer.Encode("Once upon a time there was", true)];  // ids of this 2048-token vocabulary
        Assert.That(ids, Has.Length.GreaterThanOrEqualTo(4));
        graph.Step(ids[0]);
        graph.Step(ids[1]);
        graph.Step(ids[2]);
        Assert.That(Assert.Throws<InvalidOperationException>(() => graph.Step(ids[3]))!.Message, Does.Contain("context is full"));
        Assert.That(state.Position, Is.EqualTo(3));
    }
}
