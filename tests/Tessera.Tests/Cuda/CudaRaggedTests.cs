using NUnit.Framework;
using Tessera.Api;
using Tessera.Backends;
using Tessera.Backends.Cpu;
using Tessera.Backends.Cuda;
using Tessera.Generation;
using Tessera.Interop.Kernels;
using Tessera.Model;
using Tessera.Sampling;
using Tessera.Tests.Cli;
using Tessera.Tests.Golden;

namespace Tessera.Tests.Cuda;

/// <summary>The CUDA backend's paged KV cache and ragged-batch ops: the host-side layout the kernels read (no GPU
/// needed), the serving commands' no-device path, and, on a GPU, ragged steps and the engine against the CPU.</summary>
[Category("Cuda")]  // run a second time on the CUDA emulator by ./build.sh test
public class CudaRaggedTests
{
    // A batch with a prefill chunk of 37 rows (3 tiles: 16 + 16 + 5), a decode at 300 (block 18 of its table) and a
    // chunk of 20 rows starting inside a block; tables scattered.
    private static RaggedBatch Mixed(int blockSize = 16)
    {
        var b = new RaggedBatch(64, 3, 64, blockSize);
        int Blocks(int positions) => (positions + blockSize - 1) / blockSize;
        b.Add(new int[37], 0, [.. Enumerable.Range(0, Blocks(37)).Select(i => 40 - i)]);
        b.Add([5], 300, [.. Enumerable.Range(0, Blocks(301)).Select(i => 2 * i + 1)]);
        b.Add(new int[20], 45, [.. Enumerable.Range(0, Blocks(65)).Select(i => 7 * i % 61)]);
        return b;
    }

    [TestCase(16)]
    [TestCase(8)]
    [TestCase(32)]
    public void The_layout_gives_each_row_its_position_and_the_cpus_slot_and_tiles_cover_each_sequence(int blockSize)
    {
        var batch = Mixed(blockSize);
        int length = CudaRaggedBatch.LayoutLength(batch);
        var layout = new int[length];
        int tiles = CudaRaggedBatch.Layout(batch, layout);
        int rows = batch.Rows;
        Assert.That(tiles, Is.EqualTo(3 + 1 + 2));
        Assert.That(length, Is.EqualTo(2 * rows + FlashAttention.TileInts * tiles + batch.TableStart[2] + batch.TableLength[2]));
        for (int r = 0; r < rows; r++)
        {
            int s = batch.RowSequence[r], pos = batch.Positions[r];
            var table = batch.Table(s);
            Assert.That(layout[r], Is.EqualTo(pos), $"position of row {r}");
            // The CPU backend's slot: block table[pos / block], slot pos % block within it.
            Assert.That(layout[rows + r], Is.EqualTo(table[pos / blockSize] * blockSize + pos % blockSize), $"slot of row {r}");
        }
        var covered = new int[rows];
        var tables = layout.AsSpan(2 * rows + FlashAttention.TileInts * tiles);
        for (int t = 0; t < tiles; t++)
        {
            var tile = layout.AsSpan(2 * rows + FlashAttention.TileInts * t, FlashAttention.TileInts);
            int r0 = tile[0], n = tile[1], pos0 = tile[2], off = tile[3];
            Assert.That(n, Is.InRange(1, FlashAttention.RowsPerBlock), $"tile {t}");
            Assert.That(tile[4], Is.EqualTo(FlashAttention.Chain), $"tile {t} is a chain's");
            int s = batch.RowSequence[r0];
            Assert.That(pos0, Is.EqualTo(batch.Positions[r0]), $"tile {t}'s first position");
            Assert.That(tables.Slice(off, batch.TableLength[s]).ToArray(), Is.EqualTo(batch.Table(s).ToArray()), $"tile {t}'s table");
            for (int r = r0; r < r0 + n; r++)
            {
                Assert.That(batch.RowSequence[r], Is.EqualTo(s), $"tile {t} mixes sequences at row {r}");
                covered[r]++;
            }
        }
        Assert.That(covered, Is.All.EqualTo(1), "every row in exactly one tile");
    }

    [Test]
    public void A_tree_tile_carries_its_start_and_every_row_its_ancestor_mask()
    {
        // A chain of 3, then a tree of 20 rows (two tiles) after 7 cached positions: row i's parent is (i - 1) / 2.
        var batch = new RaggedBatch(64, 2, 8, 16);
        batch.Add(new int[3], 10, [4]);
        int[] parents = [.. Enumerable.Range(0, 20).Select(i => i == 0 ? -1 : (i - 1) / 2)];
        batch.AddTree(new int[20], parents, 7, [9, 2]);
        var layout = new int[CudaRaggedBatch.LayoutLength(batch)];
        int tiles = CudaRaggedBatch.Layout(batch, layout);
        int rows = batch.Rows;
        Assert.That(tiles, Is.EqualTo(1 + 2));
        Assert.That(layout.Length, Is.EqualTo(2 * rows + FlashAttention.TileInts * tiles + 3 + FlashAttention.MaskInts * rows));
        for (int t = 0; t < tiles; t++)
            Assert.That(layout[2 * rows + FlashAttention.TileInts * t + 4], Is.EqualTo(t == 0 ? FlashAttention.Chain : 7), $"tile {t}'s tree start");
        var masks = layout.AsSpan(2 * rows + FlashAttention.TileInts * tiles + 3);
        for (int i = 0; i < 20; i++)
        {
            int r = 3 + i;
            // Rope position: 7 + depth; cache slot: position 7 + i through the table.
            int depth = 0;
            for (int a = i; a > 0; a = parents[a]) depth++;
            Assert.That(layout[r], Is.EqualTo(7 + depth), $"row {r}'s position");
            int c = 7 + i;
            Assert.That(layout[rows + r], Is.EqualTo(batch.Table(1)[c / 16] * 16 + c % 16), $"row {r}'s slot");
            for (int j = 0; j < 20; j++)
            {
                bool ancestor = false;
                for (int a = i; a >= 0; a = a == 0 ? -1 : parents[a]) ancestor |= a == j;
                bool bit = ((masks[FlashAttention.MaskInts * r + j / 32] >> (j % 32)) & 1) != 0;
                Assert.That(bit, Is.EqualTo(ancestor), $"row {i} sees tree row {j}");
            }
        }
    }

    [Test]
    public void The_layout_rejects_a_batch_whose_positions_were_edited_out_of_order()
    {
        var batch = Mixed();
        batch.CachePositions[3] = 9;  // row 3 of sequence 0 must be cached at position 3 (its RoPE position is free)
        var e = Assert.Throws<ArgumentException>(() => CudaRaggedBatch.Layout(batch, new int[CudaRaggedBatch.LayoutLength(batch)]));
        Assert.That(e!.Message, Does.Contain("row 3").And.Contain("cache position 9"));
        batch.Clear();
        Assert.That(Assert.Throws<ArgumentException>(() => CudaRaggedBatch.LayoutLength(batch))!.Message, Does.Contain("empty"));
    }

    [Test]
    public void Serving_commands_on_cuda_without_a_device_exit_3_with_the_reason()
    {
        CudaDevice.RequireAbsent();  // with a device, serve would start listening
        string model = SharedData.Model("tinystories-656k-q8_0.gguf");
        var serve = CliRunner.Run("serve", "-m", model, "--backend", "cuda", "--port", "0");
        Assert.That(serve.ExitCode, Is.EqualTo(3), serve.Err + serve.Out);
        Assert.That(serve.Err, Does.Contain("cuda: no CUDA device"));
        var bench = CliRunner.Run("bench", "-m", model, "--backend", "cuda", "--concurrency", "1,4", "-p", "8", "-n", "4");
        Assert.That(bench.ExitCode, Is.EqualTo(3), bench.Err + bench.Out);
        Assert.That(bench.Err, Does.Contain("cuda: no CUDA device"));
    }

    // Two runs are each within the golden tolerance t of llama.cpp (NMSE, a squared norm ratio), so by the triangle
    // inequality they are within (√t + √t)² = 4t of each other.
    private static double CpuVsCudaTolerance(string file) => 4 * GoldenTests.NmseTolerance(file);

    [TestCase("tinystories-656k-q8_0.gguf")]
    [TestCase("rand-llama-d256-f16.gguf")]
    public void Ragged_steps_on_cuda_match_the_cpu_for_every_sequence(string file)
    {
        var cuda = CudaDevice.Require();
        using var gpu = LoadedModel.Load(SharedData.Model(file), cuda);
        var cpu = ModelCache.Get(file).Model;
        var rng = new Random(11);
        int vocab = cpu.Config.VocabSize;
        int[] Rand(int n) => [.. Enumerable.Range(0, n).Select(_ => rng.Next(3, vocab))];
        // Three sequences: prompts of 37, 5 and 20 tokens (sequence 0 in chunks of 16), then 6 decode tokens each;
        // blocks handed out in descending order, so no table is the identity.
        int[][] all = [[.. Rand(37), .. Rand(6)], [.. Rand(5), .. Rand(6)], [.. Rand(20), .. Rand(6)]];
        int[] promptLength = [37, 5, 20];
        using var gs = gpu.Model.CreateBatchState(64, 3, 40, 16);
        using var cs = cpu.CreateBatchState(64, 3, 40, 16);
        var free = new Stack<int>(Enumerable.Range(0, 40));
        var tables = new List<int>[] { [], [], [] };
        var done = new int[3];
        var batch = new RaggedBatch(64, 3, 40, 16);
        double tol = CpuVsCudaTolerance(file);
        int compared = 0;
        for (int round = 0; round < 12; round++)
        {
            batch.Clear();
            var members = new List<int>();
            for (int q = 0; q < 3; q++)
            {
                if (done[q] == all[q].Length) continue;
                int n = done[q] < promptLength[q] ? Math.Min(q == 0 ? 16 : 64, promptLength[q] - done[q]) : 1;
                while (tables[q].Count * 16 < done[q] + n) tables[q].Add(free.Pop());
                batch.Add(all[q].AsSpan(done[q], n), done[q], tables[q].ToArray());
                members.Add(q);
            }
            if (members.Count == 0) break;
            gpu.Model.Forward(gs, batch);
            cpu.Forward(cs, batch);
            for (int i = 0; i < members.Count; i++)
            {
                int q = members[i];
                done[q] += batch.RowCount[i];
                double e = GoldenCase.Nmse(gs.SequenceLogits(i), cs.SequenceLogits(i));
                Assert.That(e, Is.LessThanOrEqualTo(tol), $"sequence {q} after {done[q]} tokens, round {round}");
                compared++;
            }
        }
        Assert.That(compared, Is.EqualTo(9 + 7 + 7), "every step of every sequence was compared (sequence 0: 3 prompt chunks)");
    }

    [Test]
    public void Speculative_decoding_on_cuda_gives_the_plain_tokens()
    {
        // Draft trees on the device: tree-masked flash attention, every row's logits, and kv_copy moving the accepted
        // path into place. The tree rows sit at other cache positions than plain decoding's, so the kernel's pages
        // group their keys differently and the logits may differ in the last bits; greedy tokens must not.
        var cuda = CudaDevice.Require();
        using var m = LoadedModel.Load(SharedData.Model("tinystories-656k-q8_0.gguf"), cuda);
        var prompt = m.Tokenizer.Encode("Once upon a time, there was a little girl named Lily. She", true);
        var plain = new GenerationOptions { MaxTokens = 40, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        List<int> Run(GenerationOptions o, out GenerationStats stats)
        {
            using var state = m.Model.CreateState(128);
            stats = new GenerationStats();
            return [.. new TextGenerator(m.Model, m.Tokenizer).Generate(state, prompt, o, stats).Where(t => t.Token >= 0).Select(t => t.Token)];
        }
        var a = Run(plain, out _);
        var b = Run(plain with { Speculation = new Tessera.Speculation.SpeculationOptions { Method = Tessera.Speculation.SpeculationMethod.Recycle, DraftMax = 24, Adaptive = false } }, out var rs);
        Assert.That(b, Is.EqualTo(a));
        Assert.That(rs.Speculation!.AcceptedTokens, Is.GreaterThan(0), "some drafts accepted: the kv_copy compaction ran");
        // A dynamic tree drafted on the device: the draft's tree passes ask logits only for their last rows.
        var d = Run(plain with { Speculation = new Tessera.Speculation.SpeculationOptions { Method = Tessera.Speculation.SpeculationMethod.Self, SkipLayers = 1, Tree = Tessera.Speculation.DraftTreeShape.Dynamic, DraftMax = 20, Adaptive = false } }, out var ds);
        Assert.That(d, Is.EqualTo(a), "self-speculation with dynamic trees");
        Assert.That(ds.Speculation!.DraftedTokens, Is.GreaterThan(0));
        var cpu = LoadedModel.Load(SharedData.Model("tinystories-656k-q8_0.gguf"));
        using (cpu)
        {
            using var state = cpu.Model.CreateState(128);
            var c = new TextGenerator(cpu.Model, cpu.Tokenizer).Generate(state, prompt, plain).Where(t => t.Token >= 0).Select(t => t.Token).ToList();
            Assert.That(a, Is.EqualTo(c), "and the CPU's");
        }
    }

    [Test]
    public void The_engine_serves_concurrent_requests_on_cuda()
    {
        var cuda = CudaDevice.Require();
        using var engine = InferenceEngine.LoadAsync(SharedData.Model("tinystories-656k-q8_0.gguf"), cuda,
            new EngineOptions { ContextSize = 256, MaxSequences = 4, MaxTokensPerStep = 64 }).GetAwaiter().GetResult();
        var options = new GenerationOptions { MaxTokens = 24, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy };
        string[] prompts = ["Once upon a time", "The little dog", "Lily wanted to", "One day, a big"];
        var results = Task.WhenAll(prompts.Select(p => engine.CompleteAsync(p, options))).GetAwaiter().GetResult();
        foreach (var r in results) Assert.That(r.TokenIds, Has.Count.EqualTo(24));
    }

    [Test]
    public void Serving_on_cuda_draws_on_the_device_the_tokens_the_host_draws()
    {
        var cuda = CudaDevice.Require();
        var sampled = new SamplingOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.02f };
        // Seeded sampling, greedy, top-k off over the 2048-token vocabulary (2048 candidates: more than the device
        // sorts, so the steps where it is due read the logits and draw on the host), and a penalty (host too).
        (string Prompt, GenerationOptions Options)[] requests =
        [
            ("Once upon a time", new() { MaxTokens = 24, StopAtEndOfGeneration = false, Sampling = sampled with { Seed = 5 } }),
            ("The little dog", new() { MaxTokens = 24, StopAtEndOfGeneration = false, Sampling = sampled with { Seed = 6, TopK = 5, Temperature = 1.3f } }),
            ("Lily wanted to", new() { MaxTokens = 20, StopAtEndOfGeneration = false, Sampling = SamplingOptions.Greedy }),
            ("One day, a big", new() { MaxTokens = 6, StopAtEndOfGeneration = false, Sampling = sampled with { Seed = 7, TopK = 0 } }),
            ("Tom and Sue", new() { MaxTokens = 8, StopAtEndOfGeneration = false, Sampling = sampled with { Seed = 8, RepetitionPenalty = 1.1f } }),
        ];
        int[][] Run(bool onDevice)
        {
            bool saved = DeviceSampling.Enabled;
            DeviceSampling.Enabled = onDevice;
            try
            {
                using var engine = InferenceEngine.LoadAsync(SharedData.Model("tinystories-656k-q8_0.gguf"), cuda,
                    new EngineOptions { ContextSize = 256, MaxSequences = 4, MaxTokensPerStep = 64 }).GetAwaiter().GetResult();
                var results = Task.WhenAll(requests.Select(q => engine.CompleteAsync(q.Prompt, q.Options))).GetAwaiter().GetResult();
                return [.. results.Select(r => r.TokenIds.ToArray())];
            }
            finally
            {
                DeviceSampling.Enabled = saved;
            }
        }
        long before = DeviceSampling.ServedTokens;
        var device = Run(true);
        long drawn = DeviceSampling.ServedTokens - before;
        var host = Run(false);
        Assert.That(DeviceSampling.ServedTokens - before, Is.EqualTo(drawn), "the host run drew nothing on the device");
        // Row by row, a sequence's logits do not depend on its neighbours, so only where the token is drawn differs.
        for (int i = 0; i < requests.Length; i++)
            Assert.That(device[i], Is.EqualTo(host[i]), $"request {i} ({requests[i].Prompt})");
        Assert.That(device.Select(d => d.Length), Is.EqualTo(requests.Select(q => q.Options.MaxTokens)));
        // Most tokens come from the device; the steps with request 3 or 4 due draw on the host.
        Assert.That(drawn, Is.GreaterThan(24).And.LessThan(requests.Sum(q => q.Options.MaxTokens)));
    }
}
