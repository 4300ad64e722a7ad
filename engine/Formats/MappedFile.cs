using System.IO.MemoryMappedFiles;

namespace Tessera.Formats;

/// <summary>
/// A whole file mapped read-only, with the checks every weight format needs before mapping (a directory, a missing
/// file and an empty file, which cannot be mapped at all, each get their own message).
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;

    private MappedFile(string path, long length)
    {
        Path = path;
        Length = length;
    }

    public string Path { get; }

    public long Length { get; }

    /// <summary>First byte of the mapping; null after <see cref="Dispose"/>.</summary>
    public byte* Pointer { get; private set; }

    /// <summary>The size of the file <paramref name="path"/> names, following symbolic links (model caches such as
    /// Hugging Face's are links; <see cref="FileInfo.Length"/> would give the link's own size).</summary>
    internal static long LengthOf(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
        return f.Length;
    }

    /// <summary>Maps <paramref name="path"/>; <paramref name="what"/> names the expected format in messages.</summary>
    public static MappedFile Open(string path, string what)
    {
        if (Directory.Exists(path)) throw new ModelFormatException(path, $"is a directory, not a {what} file");
        if (!File.Exists(path)) throw new ModelFormatException(path, "file not found");
        long length = LengthOf(path);
        if (length == 0) throw new ModelFormatException(path, "file is empty (0 bytes)");
        var file = new MappedFile(path, length);
        try
        {
            file._map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            file._view = file._map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* ptr = null;
            file._view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
            file.Pointer = ptr + file._view.PointerOffset;
            return file;
        }
        catch (Exception e)
        {
            file.Dispose();
            if (e is IOException or UnauthorizedAccessException)
                throw new ModelFormatException(path, $"cannot read the file: {e.Message}", e);
            throw;
        }
    }

    public void Dispose()
    {
        if (Pointer != null && _view != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            Pointer = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
