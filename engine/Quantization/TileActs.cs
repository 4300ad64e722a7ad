namespace Tessera.Quantization;

/// <summary>How many activation rows a register tile multiplies at once (1 or 2), as a type: a tile written as a
/// generic method over <see cref="OneAct"/> or <see cref="TwoActs"/> is compiled once for each, with the test on
/// <see cref="Two"/> folded away, so the one-row (decode) code carries no second row's registers or branches.</summary>
internal interface IActCount
{
    /// <summary>True for two activation rows.</summary>
    static abstract bool Two { get; }
}

/// <summary>One activation row (decode).</summary>
internal readonly struct OneAct : IActCount
{
    /// <inheritdoc/>
    public static bool Two => false;
}

/// <summary>Two activation rows.</summary>
internal readonly struct TwoActs : IActCount
{
    /// <inheritdoc/>
    public static bool Two => true;
}
