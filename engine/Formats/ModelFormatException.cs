namespace Tessera.Formats;

/// <summary>
/// A model, weight or tokenizer file that cannot be used: truncated, of the wrong format, inconsistent with itself,
/// or asking for something Tessera does not support. The message always names the file and the problem.
/// </summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public ModelFormatException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        FilePath = path;
        Problem = problem;
    }

    /// <summary>The file (or folder) at fault.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong with it, without the path.</summary>
    public string Problem { get; }
}
