namespace Tessera.Formats.Gguf;

/// <summary>
/// Write-only pass-through that counts bytes. <see cref="GgufWriter"/> hands it to tensor callbacks so that it can
/// check each callback wrote exactly the tensor's size (offsets in the header were computed from those sizes), and
/// so that the destination need not be seekable. Disposing it does not close the destination.
/// </summary>
internal sealed class CountingStream(Stream inner) : Stream
{
    public long Written { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        Written += buffer.Length;
    }

    public override void WriteByte(byte value)
    {
        inner.WriteByte(value);
        Written++;
    }

    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
