using System.CommandLine;
using Tessera.Formats.Gguf;
using Tessera.Model;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera inspect</c>: metadata and the tensor table of a model.</summary>
internal static class InspectCommand
{
    public static Command Create(CliIo io)
    {
        var model = CommonOptions.Model();
        var cmd = new Command("inspect", "show a model's metadata and tensors") { model };
        cmd.SetAction(r => io.Guard(() =>
        {
            string path = r.GetValue(model)!;
            if (File.Exists(path))
            {
                using var f = GgufFile.Open(path);
                io.Out.WriteLine($"GGUF v{f.Version}, {f.Metadata.Count} metadata keys, {f.Tensors.Count} tensors, {f.FileLength} bytes");
                foreach (var (k, v) in f.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    io.Out.WriteLine($"  {k,-44} {v}");
                io.Out.WriteLine();
                io.Out.WriteLine($"  {"tensor",-36} {"type",-7} {"shape",-18} {"bytes",12}");
                foreach (var t in f.Tensors)
                    io.Out.WriteLine($"  {t.Name,-36} {t.Type,-7} {t.ShapeText,-18} {t.ByteSize,12}");
                return 0;
            }
            using var m = LoadedModel.Load(path);
            io.Out.WriteLine($"{m.Format}: {m.Config}");
            void Row(WeightTensor t) => io.Out.WriteLine($"  {t.Name,-44} {t.Type,-7} [{t.Rows}, {t.Cols}]  {t.ByteSize,12}");
            Row(m.Weights.TokenEmbedding);
            foreach (var l in m.Weights.Layers)
                foreach (var t in new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.Gate, l.Up, l.Down }) Row(t);
            if (!m.Config.TiedEmbeddings) Row(m.Weights.Output);
            return 0;
        }));
        return cmd;
    }
}
