using System.Text.Json;
using Tessera.Formats;

namespace Tessera.Benchmarking;

/// <summary>One test present in both a new run and an old JSON file.</summary>
/// <param name="Test">Test name (<c>pp512</c>).</param>
/// <param name="New">Median tokens/s now.</param>
/// <param name="Old">Median tokens/s in the old file.</param>
public sealed record BenchComparison(string Test, double New, double Old)
{
    /// <summary>New over old: above 1 is faster.</summary>
    public double Ratio => New / Old;
}

/// <summary>The JSON form of a <see cref="BenchReport"/>: an array with one object per test, named and keyed the way
/// llama-bench's JSON is where it has the figure (<c>test</c>, <c>n_prompt</c>, <c>n_gen</c>, <c>avg_ts</c>-like
/// <c>tokens_per_second</c>), written with <see cref="Utf8JsonWriter"/> (no reflection, NativeAOT-safe).</summary>
public static class BenchJson
{
    /// <summary>Writes <paramref name="report"/> as an indented JSON array.</summary>
    public static void Write(BenchReport report, Stream output)
    {
        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        w.WriteStartArray();
        foreach (var r in report.Results)
        {
            w.WriteStartObject();
            w.WriteString("test", r.Test);
            w.WriteNumber("tokens_per_second", Round(r.TokensPerSecond.Median));
            w.WriteNumber("n_prompt", r.PromptTokens);
            w.WriteNumber("n_gen", r.GeneratedTokens);
            w.WriteNumber("repetitions", r.Repetitions);
            w.WriteNumber("tokens_per_second_min", Round(r.TokensPerSecond.Min));
            w.WriteNumber("tokens_per_second_max", Round(r.TokensPerSecond.Max));
            w.WriteNumber("tokens_per_second_stddev", Round(r.TokensPerSecond.StdDev));
            Nullable(w, "ttft_ms", report.TimeToFirstTokenMs);
            w.WriteNumber("load_ms", Round(report.LoadMs));
            w.WriteNumber("peak_rss_bytes", report.PeakResidentBytes);
            Nullable(w, "bytes_per_token", r.BytesPerToken);
            Nullable(w, "bandwidth_gbps", r.BandwidthGBps);
            w.WriteNumber("machine_bandwidth_gbps", Round(report.MachineBandwidthGBps));
            Nullable(w, "bandwidth_fraction", report.BandwidthFraction(r), 4);
            w.WriteString("model_filename", report.ModelPath);
            w.WriteString("model_type", report.ModelType);
            w.WriteNumber("model_size", report.ModelBytes);
            w.WriteNumber("model_n_params", report.ModelParameters);
            w.WriteString("backend", report.Backend);
            if (report.Device is { } device) w.WriteString("gpu_info", device);
            w.WriteNumber("threads", report.Threads);
            w.WriteString("cpu_info", report.Machine.CpuModel);
            w.WriteNumber("cpu_cores", report.Machine.Cores);
            w.WriteString("os", report.Machine.Os);
            w.WriteString("date", report.Date.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>Median tokens/s per test from a file written by <see cref="Write"/> (or any array of objects with
    /// <c>test</c> and <c>tokens_per_second</c>).</summary>
    /// <exception cref="ModelFormatException">The file is missing or not such an array; the message says why.</exception>
    public static IReadOnlyDictionary<string, double> ReadTokensPerSecond(string path)
    {
        if (!File.Exists(path)) throw new ModelFormatException(path, "no such file (--compare needs a JSON file from tessera bench --json)");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new ModelFormatException(path, $"not valid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
                throw new ModelFormatException(path, "expected a JSON array of test objects, as tessera bench --json writes");
            var result = new Dictionary<string, double>(StringComparer.Ordinal);
            int i = 0;
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Object
                    || !e.TryGetProperty("test", out var test) || test.ValueKind != JsonValueKind.String
                    || !e.TryGetProperty("tokens_per_second", out var tps) || !tps.TryGetDouble(out double v))
                    throw new ModelFormatException(path, $"element {i} has no string 'test' and number 'tokens_per_second'");
                result[test.GetString()!] = v;
                i++;
            }
            return result;
        }
    }

    /// <summary>New/old ratios for the tests of <paramref name="report"/> that <paramref name="oldPath"/> also has.</summary>
    /// <exception cref="ModelFormatException">The old file cannot be read.</exception>
    public static IReadOnlyList<BenchComparison> Compare(BenchReport report, string oldPath)
    {
        var old = ReadTokensPerSecond(oldPath);
        return report.Results
            .Where(r => old.TryGetValue(r.Test, out double o) && o > 0)
            .Select(r => new BenchComparison(r.Test, r.TokensPerSecond.Median, old[r.Test]))
            .ToList();
    }

    private static double Round(double v, int digits = 2) => Math.Round(v, digits);

    private static void Nullable(Utf8JsonWriter w, string name, double? v, int digits = 2)
    {
        if (v is double d) w.WriteNumber(name, Round(d, digits));
        else w.WriteNull(name);
    }
}
