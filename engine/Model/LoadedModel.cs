using Tessera.Backends;
using Tessera.Backends.Cpu;
using Tessera.Formats;
using Tessera.Formats.Gguf;
using Tessera.Tokenization;

namespace Tessera.Model;

/// <summary>
/// A model ready to run: config, weights (in place in the file's mapping), tokenizer and the prepared forward pass.
/// Loaded once and shared; each sequence has its own <see cref="RunState"/>.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private readonly IWeightSource _source;

    private LoadedModel(string path, LlamaConfig config, IWeightSource source, LlamaWeights weights,
        Tokenizer tokenizer, IBackend backend, string? chatTemplate, string format)
    {
        Path = path;
        Config = config;
        _source = source;
        Weights = weights;
        Tokenizer = tokenizer;
        Model = new LlamaModel(config, weights, backend);
        ChatTemplate = chatTemplate;
        Format = format;
    }

    /// <summary>File or folder loaded.</summary>
    public string Path { get; }
    /// <summary>"gguf" or "safetensors".</summary>
    public string Format { get; }
    /// <summary>Hyper-parameters.</summary>
    public LlamaConfig Config { get; }
    /// <summary>Weights as stored.</summary>
    public LlamaWeights Weights { get; }
    /// <summary>The model's tokenizer.</summary>
    public Tokenizer Tokenizer { get; }
    /// <summary>The forward pass on its backend.</summary>
    public LlamaModel Model { get; }
    /// <summary>The Jinja chat template shipped with the model, if any.</summary>
    public string? ChatTemplate { get; }

    /// <summary>
    /// Loads a GGUF file or a Hugging Face folder (<c>config.json</c>, <c>model.safetensors</c> or a sharded index,
    /// <c>tokenizer.json</c>/<c>tokenizer.model</c>). Runs on <paramref name="backend"/> (the CPU when null).
    /// </summary>
    /// <exception cref="ModelFormatException">The path is missing or the files are unusable; the message says which and why.</exception>
    public static LoadedModel Load(string path, IBackend? backend = null)
    {
        backend ??= new CpuBackend();
        if (Directory.Exists(path)) return LoadHf(path, backend);
        if (!File.Exists(path)) throw new ModelFormatException(path, "no such file or folder");
        var file = GgufFile.Open(path);
        try
        {
            var config = LlamaConfig.FromGguf(file);
            var source = new GgufWeightSource(file);
            var weights = LlamaWeights.Load(source, config);
            var tokenizer = Tokenizer.FromGguf(file);
            if (tokenizer.VocabSize != config.VocabSize)
                throw new ModelFormatException(path, $"the tokenizer has {tokenizer.VocabSize} tokens but the embedding table has {config.VocabSize} rows");
            file.TryGetString("tokenizer.chat_template", out string template);
            return new LoadedModel(path, config, source, weights, tokenizer, backend,
                string.IsNullOrEmpty(template) ? null : template, "gguf");
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static LoadedModel LoadHf(string dir, IBackend backend)
    {
        var (config, source, template) = HfWeightSource.Open(dir);
        try
        {
            var weights = LlamaWeights.Load(source, config);
            Tokenizer tokenizer;
            try { tokenizer = Tokenizer.Load(dir); }
            catch (ModelFormatException) { throw; }
            catch (Exception e) when (e is IOException or InvalidOperationException or NotSupportedException)
            {
                throw new ModelFormatException(dir, $"cannot load the tokenizer: {e.Message}", e);
            }
            return new LoadedModel(dir, config, source, weights, tokenizer, backend, template, "safetensors");
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Unmaps the weights.</summary>
    public void Dispose()
    {
        Model.Dispose();
        _source.Dispose();
    }
}
