using Tessera.Interop.Driver;

namespace Tessera.Interop;

/// <summary>A CUDA driver call failed: names the call and the driver's error name and description.</summary>
public sealed class CudaException : Exception
{
    /// <summary>Creates the exception for <paramref name="call"/> returning <paramref name="code"/>.</summary>
    public CudaException(string call, int code, string? detail = null)
        : base(Format(call, code, detail))
    {
        Call = call;
        Code = code;
        ErrorName = CuErrors.Name(code);
    }

    /// <summary>The driver function that failed, e.g. <c>cuMemAlloc_v2</c>.</summary>
    public string Call { get; }

    /// <summary>The CUresult value.</summary>
    public int Code { get; }

    /// <summary>The CUresult's name, e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    public string ErrorName { get; }

    internal static string Format(string call, int code, string? detail)
    {
        var text = $"{call} failed: {CuErrors.Name(code)} ({code}): {CuErrors.Text(code)}";
        return string.IsNullOrEmpty(detail) ? text : $"{text}\n{detail}";
    }
}
