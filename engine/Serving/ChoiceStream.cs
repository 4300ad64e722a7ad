using System.Threading.Channels;
using Tessera.Api;

namespace Tessera.Serving;

/// <summary>
/// The one stream of chunks a request reads, shared by its choices (<see cref="Generation.GenerationOptions.Choices"/>): each
/// chunk carries its choice's index, and the stream ends when every choice has ended, or at once with the first
/// choice that fails. Written only by the scheduler's loop.
/// </summary>
internal sealed class ChoiceStream(int choices)
{
    private readonly Channel<GenerationChunk> _channel =
        Channel.CreateUnbounded<GenerationChunk>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private int _open = choices;

    public ChannelReader<GenerationChunk> Reader => _channel.Reader;

    public void Write(GenerationChunk chunk) => _channel.Writer.TryWrite(chunk);

    /// <summary>One choice ended (with <paramref name="error"/> when it failed: that ends the whole stream).</summary>
    public void Close(Exception? error)
    {
        if (error is not null) _channel.Writer.TryComplete(error);
        else if (--_open == 0) _channel.Writer.TryComplete();
    }
}
