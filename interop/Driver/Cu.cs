namespace Tessera.Interop.Driver;

/// <summary>Checks CUresults: every driver call in Tessera goes through <see cref="Check"/>.</summary>
internal static class Cu
{
    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="result"/> is CUDA_SUCCESS.</summary>
    internal static void Check(int result, string call)
    {
        if (result != 0) throw new CudaException(call, result);
    }

    /// <summary>For Dispose paths: a failing free is reported by the next checked call, never thrown from a finalizer.</summary>
    internal static void Ignore(int result) => _ = result;
}
