namespace Tessera.Sampling.Processors;

/// <summary>
/// One stage of the sampling pipeline: changes a row of logits in place before the draw (a penalty, a bias, a
/// constraint). <see cref="Sampler"/> runs its stages in order (penalties, then logit bias), then truncation
/// (top-k, top-p, min-p), temperature and the draw. A stage keeps what it needs of the tokens so far from
/// <see cref="Accept"/>; it must not allocate per token.
/// </summary>
public interface ILogitsProcessor
{
    /// <summary>Changes <paramref name="logits"/> (one per vocabulary token) for the next draw.</summary>
    void Process(Span<float> logits);

    /// <summary>Records a token of the sequence (prompt or generated), in order.</summary>
    void Accept(int token);
}
