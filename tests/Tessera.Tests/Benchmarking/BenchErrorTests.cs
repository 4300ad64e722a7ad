using NUnit.Framework;
using Tessera.Benchmarking;
using Tessera.Model;
using Tessera.Tests.Cli;
using Tessera.Tests.Formats;

namespace Tessera.Tests.Benchmarking;

/// <summary>Bad options to <c>tessera bench</c> give one clear line naming the option or file, before any timing.</summary>
public class BenchErrorTests
{
    private const string Model = "tinystories-656k-q8_0.gguf";

    private static void AssertCleanError(CliRunner.Result r, params string[] phrases)
    {
        Assert.That(r.ExitCode, Is.EqualTo(1), $"exit code; stderr: {r.Err}");
        Assert.That(r.Err, Does.StartWith("error: "));
        foreach (var p in phrases) Assert.That(r.Err, Does.Contain(p));
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
        Assert.That(r.Out, Is.Empty);
    }

    private static CliRunner.Result Bench(params string[] args) =>
        CliRunner.Run(["bench", "-m", SharedData.Model(Model), "-r", "1", .. args]);

    [Test]
    public void UnknownModel()
    {
        string missing = Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid().ToString("N") + ".gguf");
        AssertCleanError(CliRunner.Run("bench", "-m", missing, "-p", "8", "-n", "4"), missing, "no such file");
    }

    [Test]
    public void PromptLengthZero() => AssertCleanError(Bench("-p", "0"), "--prompt-lengths 0", "at least 1");

    [Test]
    public void PromptLengthNotANumber() => AssertCleanError(Bench("-p", "64,abc"), "--prompt-lengths", "'abc'");

    [Test]
    public void PromptLengthBeyondContext()
    {
        int ctx;
        using (var m = LoadedModel.Load(SharedData.Model(Model))) ctx = m.Config.ContextLength;
        AssertCleanError(Bench("-p", $"8,{ctx + 1}", "-n", "4"), $"--prompt-lengths {ctx + 1}", $"context of {ctx}");
    }

    [Test]
    public void GenerationBeyondContext()
    {
        int ctx;
        using (var m = LoadedModel.Load(SharedData.Model(Model))) ctx = m.Config.ContextLength;
        AssertCleanError(Bench("-p", "8", "-n", $"{ctx + 1}"), $"--gen {ctx + 1}", $"context of {ctx}");
    }

    [Test]
    public void ZeroRepetitions() => 
        AssertCleanError(CliRunner.Run("bench", "-m", SharedData.Model(Model), "-p", "8", "-r", "0"), "--repetitions 0");

    [Test]
    public void NegativeThreads() => AssertCleanError(Bench("-p", "8", "-t", "-1"), "--threads -1");

    [Test]
    public void CompareFileMissingOrMalformed()
    {
        using var dir = new TempDirectory();
        string missing = dir.File("old.json");
        AssertCleanError(Bench("-p", "8", "-n", "2", "--compare", missing), missing, "no such file");
        string bad = dir.Write("bad.json", "{\"test\": 1}"u8.ToArray());
        AssertCleanError(Bench("-p", "8", "-n", "2", "--compare", bad), bad, "array");
        string noTps = dir.Write("notps.json", "[{\"test\": \"pp8\"}]"u8.ToArray());
        AssertCleanError(Bench("-p", "8", "-n", "2", "--compare", noTps), noTps, "tokens_per_second");
    }

    [Test]
    public void SpreadIsMedianMinMaxAndSampleStdDev()
    {
        var odd = Spread.Of([3.0, 1.0, 2.0]);
        Assert.That((odd.Median, odd.Min, odd.Max), Is.EqualTo((2.0, 1.0, 3.0)));
        Assert.That(odd.StdDev, Is.EqualTo(1.0).Within(1e-12));
        var even = Spread.Of([4.0, 1.0, 2.0, 3.0]);
        Assert.That(even.Median, Is.EqualTo(2.5));
        Assert.That(even.StdDev, Is.EqualTo(Math.Sqrt(5.0 / 3.0)).Within(1e-12));
        Assert.That(Spread.Of([7.0]).StdDev, Is.EqualTo(0));
    }
}
