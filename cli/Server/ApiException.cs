namespace Tessera.Cli.Server;

/// <summary>A request the server refuses: becomes an OpenAI-style error body with this HTTP status.</summary>
internal sealed class ApiException(string message, string? param, int status = 400, string type = "invalid_request_error")
    : Exception(message)
{
    public string? Param { get; } = param;
    public int Status { get; } = status;
    public string Type { get; } = type;
}
