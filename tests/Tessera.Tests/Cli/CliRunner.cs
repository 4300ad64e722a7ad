using Tessera.Cli;

namespace Tessera.Tests.Cli;

/// <summary>Runs the <c>tessera</c> command in-process with captured output.</summary>
internal static class CliRunner
{
    public sealed record Result(int ExitCode, string Out, string Err);

    public static Result Run(params string[] args) => RunWithInput(null, args);

    public static Result RunWithInput(string? input, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e, input == null ? TextReader.Null : new StringReader(input));
        return new Result(code, o.ToString(), e.ToString());
    }
}

/// <summary>A temporary copy of a shared file that a test may damage.</summary>
internal sealed class DamagedCopy : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tessera-test-").FullName;

    public DamagedCopy(string sharedModel, Func<byte[], byte[]> damage, string name = "model.gguf")
    {
        Path = System.IO.Path.Combine(_dir, name);
        File.WriteAllBytes(Path, damage(File.ReadAllBytes(SharedData.Model(sharedModel))));
    }

    public string Path { get; }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Replaces the first occurrence of an ASCII string with another of the same length.</summary>
    public static byte[] ReplaceAscii(byte[] data, string from, string to)
    {
        if (from.Length != to.Length) throw new ArgumentException("same length only");
        byte[] f = System.Text.Encoding.ASCII.GetBytes(from);
        int i = data.AsSpan().IndexOf(f);
        if (i < 0) throw new InvalidOperationException($"'{from}' not found");
        System.Text.Encoding.ASCII.GetBytes(to).CopyTo(data, i);
        return data;
    }

    /// <summary>Sets the type id in the tensor info of <paramref name="tensor"/> (name, u32 n_dims, u64 dims[n], u32 type).</summary>
    public static byte[] SetTensorType(byte[] data, string tensor, uint type)
    {
        byte[] name = System.Text.Encoding.ASCII.GetBytes(tensor);
        int i = data.AsSpan().IndexOf(name);
        if (i < 0) throw new InvalidOperationException($"'{tensor}' not found");
        int at = i + name.Length;
        uint dims = BitConverter.ToUInt32(data, at);
        BitConverter.GetBytes(type).CopyTo(data, at + 4 + 8 * (int)dims);
        return data;
    }

    /// <summary>Sets the u32 value of metadata key <paramref name="key"/> (type tag u32 follows the key).</summary>
    public static byte[] SetUInt32(byte[] data, string key, uint value)
    {
        byte[] k = System.Text.Encoding.ASCII.GetBytes(key);
        int i = data.AsSpan().IndexOf(k);
        if (i < 0) throw new InvalidOperationException($"'{key}' not found");
        int typeAt = i + k.Length;
        if (BitConverter.ToUInt32(data, typeAt) != 4) throw new InvalidOperationException($"'{key}' is not a u32");
        BitConverter.GetBytes(value).CopyTo(data, typeAt + 4);
        return data;
    }
}
