using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Tessera.Benchmarking;

/// <summary>Facts about the machine and the process that a benchmark records.</summary>
internal static class MachineInfo
{
    /// <summary>CPU model, core count and OS.</summary>
    public static MachineDescription Describe() =>
        new(CpuModel(), Environment.ProcessorCount, RuntimeInformation.OSDescription);

    private static string CpuModel()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (string line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int i and >= 0)
                        return line[(i + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return RuntimeInformation.OSArchitecture.ToString();
    }

    /// <summary>Peak resident set size of this process in bytes: <c>VmHWM</c> from <c>/proc/self/status</c> on Linux
    /// (the kernel's high-water mark, which includes mapped weight pages touched), the peak working set elsewhere.</summary>
    public static long PeakResidentBytes()
    {
        try
        {
            if (File.Exists("/proc/self/status"))
                foreach (string line in File.ReadLines("/proc/self/status"))
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    {
                        // "VmHWM:    123456 kB"
                        var parts = line["VmHWM:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        if (parts.Length >= 1 && long.TryParse(parts[0], out long kb)) return kb * 1024;
                    }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64;
    }
}
