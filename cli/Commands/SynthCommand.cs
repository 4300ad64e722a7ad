using System.CommandLine;
using System.Diagnostics;
using Tessera.Formats.Gguf;
using Tessera.Synthesis;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera synth</c>: a GGUF file with random weights at a real model's shape, for benchmarks.</summary>
internal static class SynthCommand
{
    private const string DefaultTokenizerFile = "tinystories-656k-q8_0.gguf";

    public static Command Create(CliIo io)
    {
        var shape = new Option<string>("--shape") { Description = $"model shape from the catalog ({string.Join(", ", ShapeCatalog.All.Keys)})", Required = true };
        var type = new Option<string>("--type") { Description = "f32, f16, bf16, q8_0, q4_0 or q4_k_m", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "GGUF file to write", Required = true };
        var seed = new Option<ulong>("--seed", "-s") { Description = "random seed (same seed, same file)", DefaultValueFactory = _ => 1 };
        var tokenizer = new Option<string?>("--tokenizer-from")
        {
            Description = $"GGUF file whose tokenizer is copied, padded to the vocabulary (default: {DefaultTokenizerFile} from ../shared/models)",
        };
        var cmd = new Command("synth", "write a GGUF model with random weights at a real model's shape") { shape, type, output, seed, tokenizer };
        cmd.SetAction(r => io.Guard(() =>
        {
            ModelShape s = ShapeCatalog.Get(r.GetValue(shape)!);
            SynthType t = SynthTypes.Parse(r.GetValue(type)!);
            string outPath = r.GetValue(output)!;
            string? dir = Path.GetDirectoryName(Path.GetFullPath(outPath));
            if (dir != null && !Directory.Exists(dir)) throw new ArgumentException($"--output {outPath}: folder {dir} does not exist");
            string tokPath = r.GetValue(tokenizer) ?? FindDefaultTokenizer();
            if (!File.Exists(tokPath)) throw new ArgumentException($"--tokenizer-from {tokPath}: no such file");

            using var tokFile = GgufFile.Open(tokPath);
            var synth = new ModelSynthesizer(s, t, r.GetValue(seed));
            io.Err.WriteLine(FormattableString.Invariant(
                $"synth: {s.Name} ({s.ParameterCount / 1e6:F1}M parameters) as {t}, {synth.DataBytes / 1048576.0:F1} MiB of tensors -> {outPath}"));
            var clock = Stopwatch.StartNew();
            int lastPercent = -1;
            synth.WriteFile(outPath, tokFile, (done, total) =>
            {
                int percent = (int)(100 * done / Math.Max(1, total));
                if (percent == lastPercent) return;
                lastPercent = percent;
                io.Err.Write(FormattableString.Invariant($"\r  {percent,3}%  {done / 1048576.0,9:F1} MiB  {clock.Elapsed.TotalSeconds,6:F1} s"));
            });
            io.Err.WriteLine();
            io.Err.WriteLine(FormattableString.Invariant($"synth: wrote {new FileInfo(outPath).Length} bytes in {clock.Elapsed.TotalSeconds:F1} s"));
            return 0;
        }));
        return cmd;
    }

    /// <summary>The TinyStories GGUF in <c>shared/models</c>: under <c>TESSERA_SHARED</c>, else beside a folder above the
    /// current directory or the executable.</summary>
    private static string FindDefaultTokenizer()
    {
        string? env = Environment.GetEnvironmentVariable("TESSERA_SHARED");
        if (!string.IsNullOrEmpty(env) && File.Exists(Path.Combine(env, "models", DefaultTokenizerFile)))
            return Path.Combine(env, "models", DefaultTokenizerFile);
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "shared", "models", DefaultTokenizerFile);
                if (File.Exists(candidate)) return candidate;
            }
        }
        throw new ArgumentException($"--tokenizer-from not given and {DefaultTokenizerFile} not found in shared/models (set TESSERA_SHARED or pass --tokenizer-from FILE.gguf)");
    }
}
