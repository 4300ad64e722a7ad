using System.Text;
using Tessera.Interop.Driver;

namespace Tessera.Interop;

/// <summary>A module JIT-compiled by the driver from PTX; a failed compilation's log is part of the exception.</summary>
public sealed unsafe class CudaModule : IDisposable
{
    private const int LogBytes = 16 * 1024;
    private nint _module;

    /// <summary>Loads <paramref name="ptx"/> (PTX text; a terminating NUL is added when missing). <paramref name="name"/>
    /// names the module in errors.</summary>
    public CudaModule(CudaContext context, ReadOnlySpan<byte> ptx, string name)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (ptx.IsEmpty) throw new ArgumentException($"PTX for module '{name}' is empty", nameof(ptx));
        Name = name;
        byte[] image = ptx[^1] == 0 ? ptx.ToArray() : [.. ptx, 0];
        byte[] errorLog = new byte[LogBytes];
        byte[] infoLog = new byte[LogBytes];
        fixed (byte* img = image, err = errorLog, info = infoLog)
        {
            // CUjit_option: ERROR_LOG_BUFFER 5, ERROR_LOG_BUFFER_SIZE_BYTES 6, INFO_LOG_BUFFER 3, INFO_LOG_BUFFER_SIZE_BYTES 4.
            // Values are passed in pointer-sized slots; sizes are integers cast to pointers, as the API specifies.
            int* options = stackalloc int[] { 5, 6, 3, 4 };
            void** values = stackalloc void*[] { err, (void*)LogBytes, info, (void*)LogBytes };
            nint m;
            int r = CuNative.cuModuleLoadDataEx(&m, img, 4, options, values);
            if (r != 0) throw new CudaException("cuModuleLoadDataEx", r, $"module '{name}' JIT log:\n{Text(errorLog)}");
            _module = m;
            InfoLog = Text(infoLog);
        }
    }

    /// <summary>The module's name (its kernel file).</summary>
    public string Name { get; }

    /// <summary>The JIT's informational log (registers per kernel and the like).</summary>
    public string InfoLog { get; }

    /// <summary>Looks up an <c>extern "C"</c> entry point.</summary>
    public CudaFunction Function(string entry)
    {
        ArgumentException.ThrowIfNullOrEmpty(entry);
        ObjectDisposedException.ThrowIf(_module == 0, this);
        byte[] n = [.. Encoding.UTF8.GetBytes(entry), 0];
        nint f;
        fixed (byte* p = n)
        {
            int r = CuNative.cuModuleGetFunction(&f, _module, p);
            if (r != 0) throw new CudaException("cuModuleGetFunction", r, $"kernel '{entry}' in module '{Name}'");
        }
        return new CudaFunction(f, entry);
    }

    private static string Text(byte[] log)
    {
        int end = Array.IndexOf(log, (byte)0);
        return Encoding.UTF8.GetString(log, 0, end < 0 ? log.Length : end).Trim();
    }

    /// <summary>Unloads the module (its functions become invalid).</summary>
    public void Dispose()
    {
        if (_module == 0) return;
        Cu.Ignore(CuNative.cuModuleUnload(_module));
        _module = 0;
    }
}
