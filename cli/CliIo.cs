using Tessera.Formats;

namespace Tessera.Cli;

/// <summary>The streams a command writes to, and the one place where exceptions become error lines.</summary>
public sealed class CliIo(TextWriter @out, TextWriter err, TextReader? @in = null)
{
    /// <summary>Standard input (for chat).</summary>
    public TextReader In { get; } = @in ?? Console.In;

    /// <summary>Standard output.</summary>
    public TextWriter Out { get; } = @out;
    /// <summary>Standard error.</summary>
    public TextWriter Err { get; } = err;

    /// <summary>Runs a command body; expected failures print <c>error: ...</c> and give exit code 1.</summary>
    public int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is ModelFormatException or ArgumentException or NotSupportedException
                                  or IOException or UnauthorizedAccessException or InvalidOperationException
)
        {
            // ArgumentException appends " (Parameter 'x')"; the message already names the option.
            string message = e is ArgumentException { ParamName: { } p } ? e.Message.Replace($" (Parameter '{p}')", "") : e.Message;
            Err.WriteLine($"error: {message}");
            return 1;
        }
        catch (Tessera.Backends.BackendUnavailableException e)
        {
            // Exit 3, as test-ops: the request was fine, this machine cannot serve it.
            Err.WriteLine($"error: {e.Message}");
            return 3;
        }
        catch (OperationCanceledException)
        {
            Err.WriteLine("cancelled");
            return 130;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("TESSERA_DEBUG") is null)
        {
            // Unexpected: still one line, but say it is a bug so that it gets reported.
            Err.WriteLine($"internal error ({e.GetType().Name}): {e.Message} (set TESSERA_DEBUG=1 for the stack trace)");
            return 2;
        }
    }
}
