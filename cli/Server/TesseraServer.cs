using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tessera.Api;

namespace Tessera.Cli.Server;

/// <summary>Where and how the server listens.</summary>
/// <param name="Host">Address to bind (an IP address or <c>localhost</c>).</param>
/// <param name="Port">TCP port; 0 picks a free one (see <see cref="TesseraServer.Address"/>).</param>
/// <param name="ModelId">The name <c>/v1/models</c> lists and responses carry when a request names none.</param>
/// <param name="Speculation">The speculation every request gets unless it names its own (<c>"speculate"</c>); null
/// for none. Its <see cref="Tessera.Speculation.SpeculationOptions.DraftModel"/> is also what a request's
/// <c>"speculate": "draft"</c> uses.</param>
internal sealed record ServerOptions(string Host, int Port, string ModelId, Tessera.Speculation.SpeculationOptions? Speculation = null,
    Tessera.Kv.KvBudgetOptions? KvBudget = null, Tessera.Pruning.PrefillPruningOptions? PrefillPruning = null);

/// <summary>The OpenAI-compatible HTTP server: Kestrel with minimal-API routes over one <see cref="InferenceEngine"/>.</summary>
internal sealed class TesseraServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TesseraServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The address it listens on, with the real port.</summary>
    public Uri Address { get; }

    /// <summary>Starts listening; the engine stays owned by the caller.</summary>
    public static async Task<TesseraServer> StartAsync(InferenceEngine engine, ServerOptions options, TextWriter? log = null)
    {
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"--port {options.Port}: must be 0 to 65535");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        var app = builder.Build();
        var metrics = new ServerMetrics(engine);
        var completions = new CompletionHandler(engine, metrics, options.ModelId, options.Speculation, options.KvBudget, options.PrefillPruning);

        app.MapPost("/v1/completions", (RequestDelegate)(ctx => completions.HandleAsync(ctx, isChat: false)));
        app.MapPost("/v1/chat/completions", (RequestDelegate)(ctx => completions.HandleAsync(ctx, isChat: true)));
        app.MapGet("/v1/models", (RequestDelegate)(ctx => Json(ctx, metrics, "/v1/models", w => Models(w, options.ModelId))));
        app.MapGet("/health", (RequestDelegate)(ctx => Json(ctx, metrics, "/health", w =>
        {
            w.WriteStartObject();
            w.WriteString("status", "ok");
            w.WriteEndObject();
        })));
        app.MapGet("/metrics", (RequestDelegate)(async ctx =>
        {
            metrics.Request("/metrics", 200);
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(metrics.Render()), ctx.RequestAborted).ConfigureAwait(false);
        }));

        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"--host {options.Host} --port {options.Port}: cannot listen: {e.Message}", e);
        }
        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        log?.WriteLine($"tessera: serving {options.ModelId} on {bound} (OpenAI API under /v1)");
        return new TesseraServer(app, new Uri(bound.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal)));
    }

    /// <summary>Completes when the host is asked to stop (Ctrl+C, SIGTERM).</summary>
    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    private static void Models(Utf8JsonWriter w, string modelId)
    {
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        w.WriteStartObject();
        w.WriteString("id", modelId);
        w.WriteString("object", "model");
        w.WriteNumber("created", 0);
        w.WriteString("owned_by", "tessera");
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static async Task Json(HttpContext ctx, ServerMetrics metrics, string endpoint, Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) body(w);
        metrics.Request(endpoint, 200);
        ctx.Response.ContentType = "application/json";
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Stops listening and waits for requests in flight.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
