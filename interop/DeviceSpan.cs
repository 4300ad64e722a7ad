namespace Tessera.Interop;

/// <summary>A view of <see cref="Length"/> elements of device memory: what launchers take, so that they can check
/// sizes and alignment before a kernel runs. Made from a <see cref="DeviceBuffer{T}"/>, never from a raw address.</summary>
public readonly struct DeviceSpan<T> where T : unmanaged
{
    internal DeviceSpan(ulong pointer, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Pointer = pointer;
        Length = length;
    }

    /// <summary>Device address of the first element.</summary>
    public ulong Pointer { get; }

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>The elements [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="count"/>).</summary>
    public unsafe DeviceSpan<T> Slice(long offset, long count)
    {
        DeviceMemory.CheckRange(offset, count, Length, nameof(offset));
        return new DeviceSpan<T>(Pointer + (ulong)offset * (ulong)sizeof(T), count);
    }

    /// <summary>Throws unless the address is a multiple of <paramref name="bytes"/> (vector loads need it).</summary>
    internal void RequireAlignment(int bytes, string kernel, string argument)
    {
        if (Pointer % (ulong)bytes != 0)
            throw new ArgumentException($"kernel '{kernel}': {argument} must be {bytes}-byte aligned (address 0x{Pointer:x})", argument);
    }

    /// <summary>Throws unless the view holds at least <paramref name="count"/> elements.</summary>
    internal void RequireLength(long count, string kernel, string argument)
    {
        if (Length < count)
            throw new ArgumentException($"kernel '{kernel}': {argument} holds {Length} elements, {count} needed", argument);
    }
}
