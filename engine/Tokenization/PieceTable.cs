namespace Tessera.Tokenization;

/// <summary>
/// The bytes each token stands for when detokenized (llama.cpp's <c>token_to_piece</c> with special tokens
/// rendered), computed once at load and stored in one array, so that decoding and streaming never allocate per token.
/// </summary>
internal sealed class PieceTable
{
    private readonly byte[] _bytes;
    private readonly int[] _offsets;

    private PieceTable(byte[] bytes, int[] offsets)
    {
        _bytes = bytes;
        _offsets = offsets;
    }

    /// <summary>Builds the table by asking <paramref name="write"/> for the bytes of each id in turn.</summary>
    public static PieceTable Build(int count, Action<int, List<byte>> write)
    {
        var bytes = new List<byte>(count * 6);
        var offsets = new int[count + 1];
        for (int id = 0; id < count; id++)
        {
            offsets[id] = bytes.Count;
            write(id, bytes);
        }
        offsets[count] = bytes.Count;
        return new PieceTable(bytes.ToArray(), offsets);
    }

    public ReadOnlySpan<byte> this[int id] => _bytes.AsSpan(_offsets[id], _offsets[id + 1] - _offsets[id]);
}
