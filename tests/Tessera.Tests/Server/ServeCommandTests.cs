using NUnit.Framework;
using Tessera.Cli.Server;
using Tessera.Tests.Cli;
using static Tessera.Tests.Server.ServerFixture;

namespace Tessera.Tests.Server;

/// <summary><c>tessera serve</c>'s options: bad values are one-line errors naming the option.</summary>
public class ServeCommandTests
{
    [TestCase("--parallel", "0", "error: --parallel 0: must be 1 or more")]
    [TestCase("--port", "70000", "error: --port 70000: must be 0 to 65535")]
    [TestCase("--context", "-5", "error: --context -5: must be positive")]
    [TestCase("--speculate", "medusa", "error: --speculate medusa: unknown method (known: lookup, recycle, draft, self)")]
    [TestCase("--draft-max", "0", "error: --draft-max 0: must be 1 to 127")]
    public void BadOptionIsAnErrorNamingIt(string option, string value, string message)
    {
        var r = CliRunner.Run("serve", "--model", SharedData.Model(ModelId + ".gguf"), option, value);
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Err.Trim(), Is.EqualTo(message));
    }

    [Test]
    public void MissingModelIsAnErrorNamingTheFile()
    {
        var r = CliRunner.Run("serve", "--model", "/nonexistent/model.gguf", "--port", "0");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Err, Does.StartWith("error: ").And.Contain("/nonexistent/model.gguf"));
    }

    [Test]
    public void APortInUseIsAnErrorNamingIt()
    {
        var e = Assert.ThrowsAsync<IOException>(async () =>
            await TesseraServer.StartAsync(Engine, new ServerOptions("127.0.0.1", Address.Port, ModelId)));
        Assert.That(e!.Message, Does.StartWith($"--host 127.0.0.1 --port {Address.Port}: cannot listen"));
    }

    [Test]
    public void ModelIdIsTheFileName()
    {
        Assert.That(global::Tessera.Cli.Commands.ServeCommand.ModelId("/a/b/tinystories-656k-q8_0.gguf"), Is.EqualTo("tinystories-656k-q8_0"));
        Assert.That(global::Tessera.Cli.Commands.ServeCommand.ModelId("/a/b/Llama-3.2-1B/"), Is.EqualTo("Llama-3.2-1B"));
    }
}
