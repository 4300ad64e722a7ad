using NUnit.Framework;
using Tessera.Backends;
using Tessera.Model;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Serving;

/// <summary>The ragged batched forward over a paged cache gives every sequence exactly (bit for bit) the logits it
/// gets alone over a contiguous cache, wherever its blocks lie and whatever runs beside it.</summary>
public class RaggedForwardTests
{
    private const int Block = 16;

    /// <summary>Logits after each step of the plain single-sequence path: prefill the prompt, then one token at a time.</summary>
    private static List<float[]> Contiguous(LlamaModel model, int[] prompt, int[] next)
    {
        using var s = model.CreateState(256);
        var outs = new List<float[]>();
        model.Forward(s, prompt);
        outs.Add((float[])s.Logits.Clone());
        foreach (int t in next)
        {
            model.Forward(s, [t]);
            outs.Add((float[])s.Logits.Clone());
        }
        return outs;
    }

    [TestCase("tinystories-656k-q8_0.gguf")]
    [TestCase("rand-llama-d256-q4_k_m.gguf")]
    [TestCase("rand-llama-d256-f16.gguf")]
    public void EachSequenceOfARaggedBatchMatchesItsSoloContiguousRunExactly(string file)
    {
        var model = ModelCache.Get(file).Model;
        var rng = new Random(7);
        int vocab = model.Config.VocabSize;
        int[] Rand(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(3, vocab)).ToArray();
        // Three sequences: prompts of 37, 5 and 20 tokens, then 6 decode tokens each.
        int[][] prompts = [Rand(37), Rand(5), Rand(20)];
        int[][] decodes = [Rand(6), Rand(6), Rand(6)];
        var expected = prompts.Select((p, i) => Contiguous(model, p, decodes[i])).ToArray();

        // Blocks handed out scattered (descending ids), so a wrong table lookup cannot pass by luck.
        using var state = model.CreateBatchState(maxRows: 64, maxSequences: 3, kvBlocks: 40, blockSize: Block);
        var free = new Stack<int>(Enumerable.Range(0, 40));
        var tables = new List<int>[] { [], [], [] };
        var done = new int[3];
        var step = new int[3];
        var batch = new RaggedBatch(64, 3, 40, Block);
        // Step plan: sequence 0 prefills in chunks of 16 beside the others' decodes (chunked prefill), sequence 1
        // prefills at once, sequence 2 starts one step later.
        for (int round = 0; round < 12; round++)
        {
            batch.Clear();
            var members = new List<int>();
            for (int q = 0; q < 3; q++)
            {
                if (q == 2 && round == 0) continue;
                var all = prompts[q].Concat(decodes[q]).ToArray();
                if (done[q] == all.Length) continue;
                int n = done[q] < prompts[q].Length ? Math.Min(q == 0 ? 16 : 64, prompts[q].Length - done[q]) : 1;
                while (tables[q].Count * Block < done[q] + n) tables[q].Add(free.Pop());
                batch.Add(all.AsSpan(done[q], n), done[q], tables[q].ToArray());
                members.Add(q);
            }
            if (members.Count == 0) break;
            model.Forward(state, batch);
            for (int i = 0; i < members.Count; i++)
            {
                int q = members[i];
                done[q] += batch.RowCount[i];
                if (done[q] < prompts[q].Length) continue; // mid-prefill: no logits to compare yet
                Assert.That(state.SequenceLogits(i).ToArray(), Is.EqualTo(expected[q][step[q]]), $"sequence {q}, output {step[q]}, round {round}");
                step[q]++;
            }
        }
        Assert.That(step, Is.EqualTo(new[] { 7, 7, 7 }), "every output was compared");
    }

    [Test]
    public void ABlockTableNamingABlockOutsideTheCacheIsRefusedByName()
    {
        var model = ModelCache.Get("tinystories-656k-q8_0.gguf").Model;
        using var state = model.CreateBatchState(8, 1, 4, Block);
        var batch = new RaggedBatch(8, 1, 4, Block);
        batch.Add([1, 2, 3], 0, [9]);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(state, batch))!;
        Assert.That(e.Message, Does.Contain("block 9"));
    }

    [Test]
    public void ABlockTableTooShortForThePositionsIsRefused()
    {
        var batch = new RaggedBatch(32, 1, 4, Block);
        var e = Assert.Throws<ArgumentException>(() => batch.Add(new int[17], 0, [0]))!;
        Assert.That(e.ParamName, Is.EqualTo("blockTable"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RaggedBatch(8, 1, 4, 12), "block size must be a power of two");
    }
}
