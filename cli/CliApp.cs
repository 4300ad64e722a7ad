using System.CommandLine;
using Tessera.Cli.Commands;

namespace Tessera.Cli;

/// <summary>The <c>tessera</c> command: builds the command tree and runs it with the given output streams.</summary>
public static class CliApp
{
    /// <summary>Runs the command line; returns the process exit code. Errors go to <paramref name="err"/> as one
    /// line naming the file or option and the problem, never as a stack trace.</summary>
    public static int Run(string[] args, TextWriter @out, TextWriter err, TextReader? @in = null)
    {
        var io = new CliIo(@out, err, @in);
        var root = new RootCommand("Tessera: LLM inference for Llama-family models (GGUF and Hugging Face safetensors)")
        {
            GenerateCommand.Create(io),
            ChatCommand.Create(io),
            TokenizeCommand.Create(io),
            PerplexityCommand.Create(io),
            InspectCommand.Create(io),
            BenchCommand.Create(io),
            SynthCommand.Create(io),
            TestOpsCommand.Create(io),
            GoldenCommand.Create(io),
            ServeCommand.Create(io),
        };
        var parse = root.Parse(args);
        return parse.Invoke(new InvocationConfiguration { Output = @out, Error = err, EnableDefaultExceptionHandler = false });
    }
}
