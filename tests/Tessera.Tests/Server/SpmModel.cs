using Tessera.Formats.Gguf;
using Tessera.Synthesis;

namespace Tessera.Tests.Server;

/// <summary>
/// A tiny random-weight model with the Llama 2 vocabulary (llama.cpp's ggml-vocab-llama-spm.gguf, 32000 pieces with
/// byte fallback), written once per test run. TinyStories' vocabulary has no '{', '[', '}' or ']', so it can write no
/// JSON object or array; this one can, and with random weights the grammar does all the work.
/// </summary>
internal static class SpmModel
{
    private static readonly Lazy<string> File = new(Write);

    public static string Path => File.Value;

    private static string Write()
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"tessera-spm-tiny-{Environment.ProcessId}.gguf");
        var shape = new ModelShape { Name = "spm-tiny", Dim = 64, Layers = 2, Heads = 2, KvHeads = 2, Ffn = 128, Vocab = 32000, Context = 1024 };
        using var tok = GgufFile.Open(SharedData.Path("vocab", "ggml-vocab-llama-spm.gguf"));
        new ModelSynthesizer(shape, SynthType.Q8_0, seed: 3).WriteFile(path, tok);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { System.IO.File.Delete(path); } catch (IOException) { } };
        return path;
    }
}
