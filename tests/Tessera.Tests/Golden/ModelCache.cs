using System.Collections.Concurrent;
using Tessera.Model;

namespace Tessera.Tests.Golden;

/// <summary>Each shared model file is loaded once for the whole test run (they are read-only and small).</summary>
internal static class ModelCache
{
    private static readonly ConcurrentDictionary<string, Lazy<LoadedModel>> Models = new();

    public static LoadedModel Get(string nameOrPath)
    {
        string path = Path.IsPathRooted(nameOrPath) ? nameOrPath : SharedData.Model(nameOrPath);
        return Models.GetOrAdd(path, p => new Lazy<LoadedModel>(() => LoadedModel.Load(p))).Value;
    }
}
