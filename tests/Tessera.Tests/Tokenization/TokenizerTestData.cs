using System.Text;
using NUnit.Framework;

namespace Tessera.Tests.Tokenization;

/// <summary>Locates tokenizer test inputs: llama.cpp's vectors, the shared data, and the tokenizer.json files that
/// <c>tests/fetch-tokenizers.sh</c> puts in <c>.cache/tokenizers/</c>.</summary>
public static class TokenizerTestData
{
    /// <summary>One llama.cpp tokenizer test: the input and the ids llama.cpp produced (no BOS).</summary>
    public sealed record Vector(int Index, string Input, int[] Expected)
    {
        public override string ToString() => $"#{Index} \"{Escape(Input)}\"";
    }

    /// <summary>Reads an <c>.inp</c>/<c>.out</c> pair exactly as llama.cpp's test-tokenizer-0 does: inputs split
    /// on "\n__ggml_vocab_test__\n" (the text after the last separator, empty here, is not a test), one line of
    /// space-separated ids per input.</summary>
    public static List<Vector> ReadVectors(string inpPath, string outPath)
    {
        string raw = File.ReadAllText(inpPath, new UTF8Encoding(false, true));
        const string sep = "\n__ggml_vocab_test__\n";
        var inputs = new List<string>();
        for (int pos = 0; pos < raw.Length;)
        {
            int next = raw.IndexOf(sep, pos, StringComparison.Ordinal);
            if (next < 0) { inputs.Add(raw[pos..]); break; }
            inputs.Add(raw[pos..next]);
            pos = next + sep.Length;
        }
        string[] outs = File.ReadAllText(outPath).Split('\n');
        if (outs.Length > 0 && outs[^1].Length == 0) outs = outs[..^1]; // getline stops at the final newline
        Assert.That(outs, Has.Length.EqualTo(inputs.Count), $"{inpPath}: {inputs.Count} inputs but {outs.Length} outputs");
        return inputs.Select((s, i) => new Vector(i, s,
            outs[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())).ToList();
    }

    /// <summary>Folder of the vectors committed with the tests (found by walking up from the test binary).</summary>
    public static string VectorsDir => RepoPath("tests", "Tessera.Tests", "Tokenization", "Vectors")
        ?? throw new AssertionException("tests/Tessera.Tests/Tokenization/Vectors not found above " + AppContext.BaseDirectory);

    /// <summary>A fetched tokenizer folder (.cache/tokenizers/NAME); marks the test Ignored when it is missing.</summary>
    public static string FetchedTokenizer(string name)
    {
        string? dir = RepoPath(".cache", "tokenizers", name);
        if (dir == null || !File.Exists(Path.Combine(dir, "tokenizer.json")))
            Assert.Ignore($".cache/tokenizers/{name}/tokenizer.json is missing: run tests/fetch-tokenizers.sh first");
        return dir!;
    }

    private static string? RepoPath(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine([dir.FullName, .. parts]);
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    public static string Escape(string s)
    {
        var sb = new StringBuilder();
        foreach (char c in s.Length > 60 ? s[..60] + "…" : s)
            sb.Append(c switch { '\n' => "\\n", '\t' => "\\t", '\r' => "\\r", _ => c.ToString() });
        return sb.ToString();
    }
}
