using System.Buffers.Binary;
using System.Text;

namespace Tessera.Tests.Formats;

/// <summary>Locates fields in the bytes of a GGUF file, so tests can corrupt one field of a valid file.</summary>
internal static class GgufBytes
{
    /// <summary>Offset just past a length-prefixed string (a key or tensor name) in the header.</summary>
    public static int AfterString(byte[] file, string s)
    {
        byte[] text = Encoding.UTF8.GetBytes(s);
        var pattern = new byte[8 + text.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(pattern, (ulong)text.Length);
        text.CopyTo(pattern, 8);
        int at = file.AsSpan().IndexOf(pattern);
        if (at < 0) throw new InvalidOperationException($"'{s}' not found in the file");
        return at + pattern.Length;
    }

    /// <summary>Offset of the n_dims field of tensor <paramref name="name"/>'s info.</summary>
    public static int TensorInfo(byte[] file, string name) => AfterString(file, name);

    /// <summary>Offset of the type field of the tensor info at <paramref name="info"/>.</summary>
    public static int TensorType(byte[] file, int info) => info + 4 + 8 * (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(info));

    /// <summary>Offset of the data-offset field of the tensor info at <paramref name="info"/>.</summary>
    public static int TensorOffset(byte[] file, int info) => TensorType(file, info) + 4;

    public static void PutU32(byte[] file, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(at), v);

    public static void PutU64(byte[] file, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(at), v);

    public static ulong GetU64(byte[] file, int at) => BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at));
}
