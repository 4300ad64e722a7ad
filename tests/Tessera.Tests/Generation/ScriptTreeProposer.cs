using Tessera.Speculation;

namespace Tessera.Tests.Generation;

/// <summary>A tree in which the right continuation is always the second child of its parent, after a wrong
/// sibling that has a wrong child of its own: the accepted path's rows are never consecutive (so its keys and values
/// must be moved into place), and every pass writes rows that are rejected beside and below the accepted ones.</summary>
internal sealed class ScriptTreeProposer(IReadOnlyList<int> prompt, IReadOnlyList<int> truth) : IDraftProposer
{
    public long StateBytes => 0;
    public void Propose(ReadOnlySpan<int> context, DraftTree tree)
    {
        int at = context.Length - prompt.Count, parent = 0;
        for (int d = 0; at + d < truth.Count && !tree.IsFull; d++)
        {
            int wrong = tree.Add(parent, (truth[at + d] + 7) % 512);
            if (wrong >= 0) tree.Add(wrong, (truth[at + d] + 3) % 512);
            int right = tree.Add(parent, truth[at + d]);
            if (right < 0) break;
            parent = right;
        }
    }
}
