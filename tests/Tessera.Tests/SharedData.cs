using NUnit.Framework;

namespace Tessera.Tests;

/// <summary>
/// Locates the data kept beside the project (<c>../shared</c>: models, llama.cpp golden outputs, tokenizer vectors).
/// It is never copied into the repository; tests read it in place. <c>TESSERA_SHARED</c> overrides the search.
/// </summary>
public static class SharedData
{
    private static readonly Lazy<string?> RootLazy = new(FindRoot);

    /// <summary>The shared folder, or null when it cannot be found.</summary>
    public static string? Root => RootLazy.Value;

    /// <summary>Path of a file under <c>shared/</c>; fails the test (not ignores it) when the folder is missing,
    /// since CI always has it and a silent skip would hide a broken setup.</summary>
    public static string Path(params string[] parts)
    {
        string root = Root ?? throw new AssertionException(
            "../shared not found: set TESSERA_SHARED or run from a checkout that has shared/ beside it");
        return System.IO.Path.Combine([root, .. parts]);
    }

    /// <summary>Path of a model file in <c>shared/models</c>.</summary>
    public static string Model(string name) => Path("models", name);

    private static string? FindRoot()
    {
        string? env = Environment.GetEnvironmentVariable("TESSERA_SHARED");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return System.IO.Path.GetFullPath(env);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = System.IO.Path.Combine(dir.FullName, "shared");
            if (File.Exists(System.IO.Path.Combine(candidate, "models", "MODELS.md"))) return candidate;
        }
        return null;
    }
}
