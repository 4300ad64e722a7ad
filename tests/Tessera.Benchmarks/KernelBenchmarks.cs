using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Tessera.Backends;
using Tessera.Backends.Cpu;
using Tessera.Model;
using Tessera.Quantization;

namespace Tessera.Benchmarks;

/// <summary>One weight row · one activation row (already in the vec-dot type), per weight type, at real row lengths.
/// 64 rows (tens of KiB, in cache) per invocation: this is the kernel's compute speed, not memory's.</summary>
public unsafe class VecDotBenchmarks : IWorkload
{
    private const int Rows = 64;
    private byte* _w;
    private byte[] _a = [];
    private long _rowBytes;

    /// <summary>Weight type.</summary>
    [Params(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_NL)]
    public GgmlType Type { get; set; }

    /// <summary>Row length.</summary>
    [Params(2048, 4096)]
    public int N { get; set; }

    /// <inheritdoc/>
    public double BytesPerOperation => GgmlTypeInfo.RowBytes(Type, N);
    /// <inheritdoc/>
    public double FlopsPerOperation => 2.0 * N;

    /// <summary>Makes the rows.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _w = RandomData.Weights(Type, Rows, N, out _);
        _rowBytes = GgmlTypeInfo.RowBytes(Type, N);
        GgmlType vt = VecDotType.For(Type);
        _a = new byte[GgmlTypeInfo.RowBytes(vt, N)];
        ActivationQuantizer.QuantizeRow(vt, RandomData.Floats(N), _a);
    }

    /// <summary>Frees the rows.</summary>
    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_w);

    /// <summary>64 dot products.</summary>
    [Benchmark(OperationsPerInvoke = Rows)]
    public float Dot()
    {
        float s = 0;
        int rowBytes = (int)_rowBytes;
        for (int r = 0; r < Rows; r++)
            s += VecDot.Compute(Type, new ReadOnlySpan<byte>(_w + r * _rowBytes, rowBytes), _a, N);
        return s;
    }
}

/// <summary>Y = X · Wᵀ through <see cref="QuantizedMatMul"/> (activation conversion included), a 2048 x 2048 weight
/// (llama-3.2-1b's attention projections): batch 1 is decode's matrix-vector product and should run at memory speed
/// once the weight exceeds the cache, batch 64 is prefill's matrix-matrix product.</summary>
public unsafe class MatMulBenchmarks : IWorkload
{
    private const int Rows = 2048, Cols = 2048;
    private byte* _w;
    private long _bytes;
    private float[] _x = [], _y = [];
    private byte[] _scratch = [];

    /// <summary>Weight type.</summary>
    [Params(GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K)]
    public GgmlType Type { get; set; }

    /// <summary>Activation rows.</summary>
    [Params(1, 64)]
    public int Batch { get; set; }

    /// <inheritdoc/>
    public double BytesPerOperation => GgmlTypeInfo.RowBytes(Type, Cols) * (double)Rows + 4.0 * Batch * (Rows + Cols);
    /// <inheritdoc/>
    public double FlopsPerOperation => 2.0 * Rows * Cols * Batch;

    /// <summary>Makes the weight and activations.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _w = RandomData.Weights(Type, Rows, Cols, out _bytes);
        _x = RandomData.Floats(Batch * Cols);
        _y = new float[Batch * Rows];
        _scratch = new byte[QuantizedMatMul.ScratchBytes(Type, Cols, Batch)];
    }

    /// <summary>Frees the weight.</summary>
    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_w);

    /// <summary>One product.</summary>
    [Benchmark]
    public void MatMul() => QuantizedMatMul.Multiply(Type, _w, _bytes, Rows, Cols, _x, Batch, _y, _scratch);
}

/// <summary>Shared setup for the backend ops: a CPU backend and llama-3.2-1b's attention shape.</summary>
public abstract class BackendBenchmark : IDisposable
{
    /// <summary>llama-3.2-1b: 2048 wide, 32 query heads and 8 key/value heads of 64.</summary>
    protected static readonly LlamaConfig Config = new()
    {
        Architecture = "llama", VocabSize = 128256, Dim = 2048, FfnDim = 8192, Layers = 1, Heads = 32, KvHeads = 8, HeadDim = 64,
        NormEps = 1e-5f, RopeTheta = 500000f, RopeLayout = RopeLayout.AdjacentPairs, ContextLength = 4096, TiedEmbeddings = true,
    };

    /// <summary>The backend under test.</summary>
    protected readonly CpuBackend Backend = new();

    /// <summary>A backend buffer of <paramref name="rows"/> x <paramref name="cols"/> random floats (through Embed,
    /// the backend's public way to fill one).</summary>
    protected Activation RandomActivation(int rows, int cols)
    {
        var table = RandomData.FloatTable(rows, cols);
        var a = Backend.Allocate(rows * cols);
        Backend.Embed(Backend.Prepare(table), Enumerable.Range(0, rows).ToArray(), a);
        return a;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Backend.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Decode attention: one query row over <see cref="Positions"/> cached positions (F16 K and V).</summary>
public class AttentionBenchmarks : BackendBenchmark, IWorkload
{
    private Activation _q = null!, _out = null!;
    private KvCache _cache = null!;

    /// <summary>Positions already in the cache.</summary>
    [Params(128, 1024)]
    public int Positions { get; set; }

    /// <inheritdoc/>
    public double BytesPerOperation => 2.0 * (Positions + 1) * Config.KvDim * sizeof(short);
    /// <inheritdoc/>
    public double FlopsPerOperation => 4.0 * Config.Heads * Config.HeadDim * (Positions + 1);

    /// <summary>Fills the cache.</summary>
    [GlobalSetup]
    public void Setup()
    {
        int n = Positions + 1, blocks = (n + 15) / 16;
        _cache = Backend.CreatePagedKvCache(Config, blocks, 16);
        int[] table = [.. Enumerable.Range(0, blocks)];
        var all = new RaggedBatch(n, 1, blocks, 16);
        all.Add(new int[n], 0, table);
        var k = RandomActivation(n, Config.KvDim);
        var v = RandomActivation(n, Config.KvDim);
        Backend.StoreKv(_cache, 0, k, v, all);
        _step = new RaggedBatch(1, 1, blocks, 16);
        _step.Add([0], Positions, table);
        _q = RandomActivation(1, Config.QDim);
        _out = Backend.Allocate(Config.QDim);
    }

    /// <summary>One query row at position <see cref="Positions"/>.</summary>
    [Benchmark]
    public void Attention() => Backend.Attention(_q, _cache, 0, _step, _out);

    private RaggedBatch _step = null!;
}

/// <summary>RMSNorm of <see cref="Rows"/> rows of <see cref="Dim"/>.</summary>
public class RmsNormBenchmarks : BackendBenchmark, IWorkload
{
    private Activation _x = null!, _y = null!;
    private BackendVector _w = null!;

    /// <summary>Row width.</summary>
    [Params(2048, 4096)]
    public int Dim { get; set; }

    /// <summary>Rows (1 = decode, 64 = a prefill chunk).</summary>
    [Params(1, 64)]
    public int Rows { get; set; }

    /// <inheritdoc/>
    public double BytesPerOperation => 4.0 * Dim * (2.0 * Rows + 1);
    /// <inheritdoc/>
    public double FlopsPerOperation => 4.0 * Dim * Rows;

    /// <summary>Makes x and the weight.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _x = RandomActivation(Rows, Dim);
        _y = Backend.Allocate(Rows * Dim);
        _w = Backend.Prepare(RandomData.Floats(Dim));
    }

    /// <summary>One normalization.</summary>
    [Benchmark]
    public void RmsNorm() => Backend.RmsNorm(_x, _w, _y, Rows, 1e-5f);
}

/// <summary>RoPE on <see cref="Rows"/> rows of 32 heads of 64 (llama-3.2-1b's queries) at position 100.</summary>
public class RopeBenchmarks : BackendBenchmark, IWorkload
{
    private Activation _x = null!;

    /// <summary>Rows (1 = decode, 64 = a prefill chunk).</summary>
    [Params(1, 64)]
    public int Rows { get; set; }

    /// <inheritdoc/>
    public double BytesPerOperation => 8.0 * Rows * Config.QDim;
    /// <inheritdoc/>
    public double FlopsPerOperation => 6.0 * Rows * Config.QDim / 2;

    /// <summary>Makes x.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _x = RandomActivation(Rows, Config.QDim);
        _batch = new RaggedBatch(Rows, 1, 1, 256);  // one block covers positions 100 .. 100 + Rows
        _batch.Add(new int[Rows], 100, [0]);
    }

    /// <summary>One rotation in place (repeated rotations keep the values' scale: it is a rotation).</summary>
    [Benchmark]
    public void Rope() => Backend.Rope(_x, _batch, Config.Heads, Config.HeadDim, new RopeFrequencies(Config.RopeTheta), RopeLayout.AdjacentPairs);

    private RaggedBatch _batch = null!;
}
