namespace Tessera.Tests.Formats;

/// <summary>A fresh folder under the system temp directory, deleted with everything in it on dispose. Bad files
/// are made here, never in ../shared.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tessera-fmt-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes <paramref name="bytes"/> to a file in the folder and returns its path.</summary>
    public string Write(string name, byte[] bytes)
    {
        string p = File(name);
        System.IO.File.WriteAllBytes(p, bytes);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { /* a mapping still open on Windows; the OS temp cleaner gets it */ }
    }
}
