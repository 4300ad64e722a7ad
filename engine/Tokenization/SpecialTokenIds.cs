namespace Tessera.Tokenization;

/// <summary>
/// The special token ids and flags of a vocabulary, as read from a file (null: the file names none). Validated by
/// <see cref="TokenVocabulary"/> against the vocabulary size.
/// </summary>
internal sealed record SpecialTokenIds
{
    public int? Bos { get; init; }
    public int? Eos { get; init; }
    public int? Eot { get; init; }
    public int? Eom { get; init; }
    public int? Unknown { get; init; }
    public int? Padding { get; init; }
    /// <summary>Fill-in-the-middle markers: prefix, suffix, middle (null: the file names none; see <see cref="TokenVocabulary"/>).</summary>
    public int? FimPrefix { get; init; }
    public int? FimSuffix { get; init; }
    public int? FimMiddle { get; init; }
    public bool AddBos { get; init; }
    public bool AddEos { get; init; }
}
