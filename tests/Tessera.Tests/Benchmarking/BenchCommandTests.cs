using System.Globalization;
using System.Text.Json;
using NUnit.Framework;
using Tessera.Formats.Gguf;
using Tessera.Quantization;
using Tessera.Tests.Cli;
using Tessera.Tests.Formats;

namespace Tessera.Tests.Benchmarking;

/// <summary><c>tessera bench</c> end to end on the TinyStories model with tiny settings. Figures are checked for being
/// present and consistent with each other and with the file, never for speed.</summary>
public class BenchCommandTests
{
    private const string Model = "tinystories-656k-q8_0.gguf";

    private static JsonElement[] RunToJson(TempDirectory dir, string name, out CliRunner.Result r, params string[] extra)
    {
        string json = dir.File(name);
        r = CliRunner.Run(["bench", "-m", SharedData.Model(Model), "-p", "8", "-n", "4", "-r", "1", "--json", json, .. extra]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        return doc.RootElement.EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    [Test]
    public void JsonHasOneObjectPerTestWithTheFigures()
    {
        using var dir = new TempDirectory();
        var tests = RunToJson(dir, "bench.json", out var r);
        Assert.That(tests.Select(t => t.GetProperty("test").GetString()), Is.EqualTo(new[] { "pp8", "tg4" }));
        var pp = tests[0];
        var tg = tests[1];
        Assert.Multiple(() =>
        {
            Assert.That(pp.GetProperty("n_prompt").GetInt32(), Is.EqualTo(8));
            Assert.That(pp.GetProperty("n_gen").GetInt32(), Is.EqualTo(0));
            Assert.That(tg.GetProperty("n_prompt").GetInt32(), Is.EqualTo(0));
            Assert.That(tg.GetProperty("n_gen").GetInt32(), Is.EqualTo(4));
            foreach (var t in tests)
            {
                double tps = t.GetProperty("tokens_per_second").GetDouble();
                Assert.That(tps, Is.GreaterThan(0));
                Assert.That(t.GetProperty("repetitions").GetInt32(), Is.EqualTo(1));
                // One repetition: median, min and max are the same sample.
                Assert.That(t.GetProperty("tokens_per_second_min").GetDouble(), Is.EqualTo(tps));
                Assert.That(t.GetProperty("tokens_per_second_max").GetDouble(), Is.EqualTo(tps));
                Assert.That(t.GetProperty("ttft_ms").GetDouble(), Is.GreaterThan(0));
                Assert.That(t.GetProperty("load_ms").GetDouble(), Is.GreaterThan(0));
                Assert.That(t.GetProperty("peak_rss_bytes").GetInt64(), Is.GreaterThan(new FileInfo(SharedData.Model(Model)).Length));
                Assert.That(t.GetProperty("machine_bandwidth_gbps").GetDouble(), Is.GreaterThan(0));
                Assert.That(t.GetProperty("model_filename").GetString(), Is.EqualTo(SharedData.Model(Model)));
                Assert.That(t.GetProperty("model_type").GetString(), Does.StartWith("llama ").And.EndWith(" Q8_0"));
                Assert.That(t.GetProperty("threads").GetInt32(), Is.EqualTo(Environment.ProcessorCount));
                Assert.That(t.GetProperty("cpu_cores").GetInt32(), Is.EqualTo(Environment.ProcessorCount));
                Assert.That(t.GetProperty("cpu_info").GetString(), Is.Not.Empty);
                Assert.That(DateTimeOffset.TryParse(t.GetProperty("date").GetString(), CultureInfo.InvariantCulture, DateTimeStyles.None, out _));
            }
            // Bandwidth is a decode figure: null for pp.
            Assert.That(pp.GetProperty("bandwidth_gbps").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(pp.GetProperty("bandwidth_fraction").ValueKind, Is.EqualTo(JsonValueKind.Null));
        });

        // tg: bandwidth = bytes per token x tokens/s, and the fraction is of the measured machine bandwidth.
        double bpt = tg.GetProperty("bytes_per_token").GetDouble();
        double gbps = tg.GetProperty("bandwidth_gbps").GetDouble();
        double machine = tg.GetProperty("machine_bandwidth_gbps").GetDouble();
        // Tolerances are the JSON's rounding: 2 decimals for GB/s and tokens/s, 4 for the fraction.
        double expectedGbps = bpt * tg.GetProperty("tokens_per_second").GetDouble() / 1e9;
        Assert.That(gbps, Is.EqualTo(expectedGbps).Within(0.005 + 0.005 * bpt / 1e9 + 1e-9));
        double expectedFraction = gbps / machine;
        Assert.That(tg.GetProperty("bandwidth_fraction").GetDouble(),
            Is.EqualTo(expectedFraction).Within(0.00005 + 0.005 / machine + 0.005 * expectedFraction / machine + 1e-9));
        // A decode step reads at least every block's matrices and at most the whole file plus the KV cache.
        using var gguf = GgufFile.Open(SharedData.Model(Model));
        long blockBytes = gguf.Tensors.Where(t => t.Name.StartsWith("blk.", StringComparison.Ordinal)).Sum(t => t.ByteSize);
        Assert.That(bpt, Is.GreaterThanOrEqualTo(blockBytes));
        Assert.That(bpt, Is.LessThan(new FileInfo(SharedData.Model(Model)).Length + 1_000_000));

        // The table on stdout: one row per test (Markdown, since the output is captured).
        Assert.That(r.Out, Does.Contain("| pp8 ").And.Contain("| tg4 "));
        Assert.That(r.Out, Does.Contain("Q8_0"));
    }

    [Test]
    public void CompareGivesNewOverOldPerTest()
    {
        using var dir = new TempDirectory();
        // An old run with made-up figures: pp8 at 2 t/s, tg4 at 4 t/s, and a test this run does not have.
        string old = dir.Write("old.json", System.Text.Encoding.UTF8.GetBytes(
            """[{"test":"pp8","tokens_per_second":2.0},{"test":"tg4","tokens_per_second":4.0},{"test":"pp512","tokens_per_second":9.0}]"""));
        var tests = RunToJson(dir, "new.json", out var r, "--compare", old);
        var printed = ComparisonRows(r.Out);
        Assert.That(printed.Keys, Is.EquivalentTo(new[] { "pp8", "tg4" }));
        Assert.That(printed["pp8"], Is.EqualTo(tests[0].GetProperty("tokens_per_second").GetDouble() / 2.0).Within(0.1).Percent);
        Assert.That(printed["tg4"], Is.EqualTo(tests[1].GetProperty("tokens_per_second").GetDouble() / 4.0).Within(0.1).Percent);
    }

    /// <summary>test → new/old from the comparison table (the last column of the rows after "compared with").</summary>
    private static Dictionary<string, double> ComparisonRows(string output)
    {
        int at = output.IndexOf("compared with", StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), output);
        var rows = new Dictionary<string, double>();
        foreach (string line in output[at..].Split('\n'))
        {
            var cells = line.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (cells.Length == 4 && double.TryParse(cells[3], NumberStyles.Float, CultureInfo.InvariantCulture, out double ratio))
                rows[cells[0]] = ratio;
        }
        return rows;
    }

    [Test]
    public void ThreadsOptionIsRecordedAndNotLeftSetAfterwards()
    {
        using var dir = new TempDirectory();
        int before = QuantizedMatMul.MaxThreads;
        var tests = RunToJson(dir, "t1.json", out _, "--threads", "1");
        Assert.That(tests.Select(t => t.GetProperty("threads").GetInt32()), Is.All.EqualTo(1));
        Assert.That(QuantizedMatMul.MaxThreads, Is.EqualTo(before));
    }

    [Test]
    public void JsonToStdoutIsOneDocumentWithoutTheTable()
    {
        var r = CliRunner.Run("bench", "-m", SharedData.Model(Model), "-p", "4", "-n", "2", "-r", "1", "--json", "-");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.That(doc.RootElement.EnumerateArray().Select(e => e.GetProperty("test").GetString()), Is.EqualTo(new[] { "pp4", "tg2" }));
    }
}
