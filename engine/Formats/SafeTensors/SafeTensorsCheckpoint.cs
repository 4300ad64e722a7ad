using System.Text.Json;

namespace Tessera.Formats.SafeTensors;

/// <summary>
/// The weights of a Hugging Face model folder: <c>model.safetensors</c>, or the shards listed by
/// <c>model.safetensors.index.json</c> (<c>weight_map</c>: tensor name → shard file). One lookup by tensor name
/// across shards, with aliases resolved: a tensor that was saved once under one name but is shared by another (tied
/// embeddings) is recorded in <c>__metadata__</c> as <c>"missing name": "stored name"</c>, which is how
/// <c>safetensors.torch.save_model</c> writes it.
/// </summary>
public sealed class SafeTensorsCheckpoint : IDisposable
{
    /// <summary>File name of an unsharded checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>File name of a sharded checkpoint's index.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafeTensorsFile> _files = [];
    private readonly Dictionary<string, SafeTensorsTensor> _tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _aliases = new(StringComparer.Ordinal);

    private SafeTensorsCheckpoint(string path) => Path = path;

    /// <summary>The file the checkpoint was opened from: the single file or the index.</summary>
    public string Path { get; }

    /// <summary>The open safetensors files (one, or every shard in index order of first appearance).</summary>
    public IReadOnlyList<SafeTensorsFile> Files => _files;

    /// <summary><c>__metadata__</c> of all files merged (for a key in several shards, the first shard's value).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    /// <summary>Alias name → stored tensor name, for names found in metadata whose target is a stored tensor.</summary>
    public IReadOnlyDictionary<string, string> Aliases => _aliases;

    /// <summary>Names of the stored tensors (aliases not included).</summary>
    public IEnumerable<string> TensorNames => _tensors.Keys;

    /// <summary>Number of stored tensors.</summary>
    public int TensorCount => _tensors.Count;

    /// <summary>
    /// Opens a checkpoint from a folder (preferring <c>model.safetensors</c> to the index, as transformers does),
    /// a <c>.safetensors</c> file, or an index file.
    /// </summary>
    /// <exception cref="ModelFormatException">Nothing to open, a shard missing, or any file invalid.</exception>
    public static SafeTensorsCheckpoint Open(string path)
    {
        if (Directory.Exists(path))
        {
            string single = System.IO.Path.Combine(path, SingleFileName);
            string index = System.IO.Path.Combine(path, IndexFileName);
            if (File.Exists(single)) path = single;
            else if (File.Exists(index)) path = index;
            else throw new ModelFormatException(path, $"folder has neither {SingleFileName} nor {IndexFileName}");
        }
        var checkpoint = new SafeTensorsCheckpoint(path);
        try
        {
            if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) checkpoint.LoadIndex();
            else checkpoint.AddFile(SafeTensorsFile.Open(path), wanted: null);
            checkpoint.ResolveAliases();
            return checkpoint;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>True when <paramref name="name"/> is a stored tensor or an alias of one.</summary>
    public bool Contains(string name) => FindTensor(name) != null;

    /// <summary>The tensor called <paramref name="name"/> (following aliases), or null.</summary>
    public SafeTensorsTensor? FindTensor(string name) =>
        _tensors.GetValueOrDefault(name) ?? (_aliases.TryGetValue(name, out var target) ? _tensors[target] : null);

    /// <summary>The tensor called <paramref name="name"/> (following aliases); a <see cref="ModelFormatException"/>
    /// naming the checkpoint when absent.</summary>
    public SafeTensorsTensor GetTensor(string name) =>
        FindTensor(name) ?? throw new ModelFormatException(Path, $"tensor '{name}' is missing");

    private void LoadIndex()
    {
        if (!File.Exists(Path)) throw new ModelFormatException(Path, "file not found");
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;
        JsonDocument doc;
        try
        {
            byte[] bytes = File.ReadAllBytes(Path);
            if (!System.Text.Unicode.Utf8.IsValid(bytes))
                throw new ModelFormatException(Path, "not valid JSON: it is not valid UTF-8");
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(Path, $"not valid JSON: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new ModelFormatException(Path, $"cannot read the file: {e.Message}", e);
        }

        // Shard file → the tensors the index places there, in order of first appearance.
        var shards = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(Path, "has no weight_map object");
            foreach (JsonProperty p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new ModelFormatException(Path, $"weight_map entry for tensor '{p.Name}' is a JSON {p.Value.ValueKind}, not a file name");
                string shard = p.Value.GetString()!;
                // A shard is a file beside the index, never a path that could reach elsewhere.
                if (shard.Length == 0 || shard != System.IO.Path.GetFileName(shard) || shard is "." or "..")
                    throw new ModelFormatException(Path, $"weight_map places tensor '{p.Name}' in '{shard}', which is not a file name in the index's folder");
                if (!shards.TryGetValue(shard, out var names)) shards[shard] = names = [];
                names.Add(p.Name);
            }
        }
        foreach (var (shard, names) in shards)
        {
            string shardPath = System.IO.Path.Combine(folder, shard);
            if (!File.Exists(shardPath))
                throw new ModelFormatException(Path, $"shard '{shard}' (holding tensor '{names[0]}' and {names.Count - 1} more) is missing");
            AddFile(SafeTensorsFile.Open(shardPath), names);
        }
    }

    /// <summary>Adds a file's tensors; <paramref name="wanted"/> are those the index says it holds, which must be there.</summary>
    private void AddFile(SafeTensorsFile file, List<string>? wanted)
    {
        _files.Add(file);
        foreach (var (key, value) in file.Metadata) _metadata.TryAdd(key, value);
        if (wanted == null)
        {
            foreach (var t in file.Tensors) _tensors[t.Name] = t;
            return;
        }
        foreach (string name in wanted)
        {
            _tensors[name] = file.FindTensor(name) ?? throw new ModelFormatException(Path,
                $"tensor '{name}' is placed in shard '{System.IO.Path.GetFileName(file.Path)}' by the index, but that file does not have it");
        }
    }

    private void ResolveAliases()
    {
        foreach (var (alias, target) in _metadata)
        {
            if (_tensors.ContainsKey(alias)) continue;
            // Follow chains (a → b → c) a few steps; metadata that names no tensor (e.g. "format": "pt") is not an alias.
            string t = target;
            for (int hops = 0; hops < 8 && !_tensors.ContainsKey(t) && _metadata.TryGetValue(t, out var next); hops++) t = next;
            if (_tensors.ContainsKey(t)) _aliases[alias] = t;
        }
    }

    /// <summary>Unmaps every file; tensor pointers are invalid afterwards.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
