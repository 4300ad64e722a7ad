namespace Tessera.Model;

/// <summary>
/// Where a model's weights come from. Tensors are asked for by llama.cpp's GGUF names
/// (<c>blk.0.attn_q.weight</c>); a Hugging Face source maps those to its own names.
/// </summary>
public interface IWeightSource : IDisposable
{
    /// <summary>File or folder the weights are read from, for error messages.</summary>
    string Path { get; }

    /// <summary>The tensor with llama.cpp name <paramref name="name"/> as <paramref name="rows"/> x <paramref name="cols"/>,
    /// or null when the file does not have it. Throws a format error when the tensor exists with another shape.</summary>
    WeightTensor? Find(string name, int rows, int cols);
}
