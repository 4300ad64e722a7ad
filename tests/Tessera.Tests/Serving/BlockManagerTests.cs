using NUnit.Framework;
using Tessera.Kv;

namespace Tessera.Tests.Serving;

public class BlockManagerTests
{
    private static int[] Tokens(int start, int n = 4) => Enumerable.Range(start, n).ToArray();

    [Test]
    public void AllocateUntilExhaustedThenFreeRestoresEverything()
    {
        var m = new BlockManager(3, 4);
        var got = new List<int>();
        while (m.TryAllocate(out int b)) got.Add(b);
        Assert.That(got, Is.EquivalentTo(new[] { 0, 1, 2 }));
        Assert.That(m.BlocksInUse, Is.EqualTo(3));
        Assert.That(m.AvailableBlocks, Is.EqualTo(0));
        Assert.That(m.TryAllocate(out int none), Is.False, "exhaustion is a false, not an exception");
        Assert.That(none, Is.EqualTo(-1));
        foreach (int b in got) m.Release(b);
        Assert.That(m.BlocksInUse, Is.EqualTo(0));
        Assert.That(m.AvailableBlocks, Is.EqualTo(3));
    }

    [Test]
    public void TruncateReleasesTheTailBlocksOnly()
    {
        var m = new BlockManager(6, 4);
        var table = new List<int>();
        for (int i = 0; i < 4; i++) { m.TryAllocate(out int b); table.Add(b); }   // 16 positions
        m.Truncate(table, 9);                                                    // needs 3 blocks
        Assert.That(table, Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.That(m.BlocksInUse, Is.EqualTo(3));
        m.Truncate(table, 8);
        Assert.That(table, Has.Count.EqualTo(2), "a length on a block boundary keeps no empty block");
        m.Truncate(table, 0);
        Assert.That(table, Is.Empty);
        Assert.That(m.BlocksInUse, Is.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Truncate(table, 1));
    }

    [Test]
    public void ForkSharesFullBlocksAndCopiesThePartialOne()
    {
        var m = new BlockManager(5, 4);
        var parent = new List<int>();
        for (int i = 0; i < 3; i++) { m.TryAllocate(out int b); parent.Add(b); }  // 10 positions in 3 blocks
        var child = new List<int> { 99 };
        Assert.That(m.TryFork(parent, 10, child, out var copy), Is.True);
        Assert.That(child.Take(2), Is.EqualTo(parent.Take(2)), "full blocks are shared");
        Assert.That(child[2], Is.Not.EqualTo(parent[2]), "the partial block is the child's own");
        Assert.That(copy, Is.EqualTo((parent[2], child[2], 2)));
        Assert.That(m.RefCount(parent[0]), Is.EqualTo(2));
        Assert.That(m.RefCount(parent[2]), Is.EqualTo(1));
        // Releasing the parent leaves the child whole.
        m.Truncate(parent, 0);
        Assert.That(child.Select(m.RefCount), Is.All.EqualTo(1));
        // On a block boundary nothing is copied; with no block free a partial fork fails and changes nothing.
        var aligned = new List<int>();
        Assert.That(m.TryFork(child, 8, aligned, out var none), Is.True);
        Assert.That(none.Slots, Is.Zero);
        Assert.That(aligned, Is.EqualTo(child.Take(2)));
        while (m.TryAllocate(out _)) { }
        int inUse = m.BlocksInUse;
        var failed = new List<int> { 7 };
        Assert.That(m.TryFork(child, 9, failed, out _), Is.False);
        Assert.That(failed, Is.EqualTo(new[] { 7 }));
        Assert.That(m.BlocksInUse, Is.EqualTo(inUse));
    }

    [Test]
    public void ReferenceCountsKeepASharedBlockUntilTheLastRelease()
    {
        var m = new BlockManager(2, 4);
        Assert.That(m.TryAllocate(out int b), Is.True);
        m.AddRef(b);
        Assert.That(m.RefCount(b), Is.EqualTo(2));
        m.Release(b);
        Assert.That(m.BlocksInUse, Is.EqualTo(1), "one holder left");
        m.Release(b);
        Assert.That(m.BlocksInUse, Is.EqualTo(0));
        Assert.Throws<InvalidOperationException>(() => m.Release(b), "a double free is caught");
        Assert.Throws<InvalidOperationException>(() => m.AddRef(b), "a free block cannot be shared");
    }

    [Test]
    public void AFullRegisteredBlockIsFoundByItsChainAfterRelease()
    {
        var m = new BlockManager(4, 4);
        m.TryAllocate(out int b0);
        m.TryAllocate(out int b1);
        ulong h0 = BlockManager.ChainHash(0, Tokens(10));
        ulong h1 = BlockManager.ChainHash(h0, Tokens(20));
        m.Register(b0, h0, 0, Tokens(10));
        m.Register(b1, h1, h0, Tokens(20));
        m.Release(b0);
        m.Release(b1);
        Assert.That(m.CachedBlocks, Is.EqualTo(2));
        Assert.That(m.BlocksInUse, Is.EqualTo(0));

        Assert.That(m.Lookup(h0, 0, Tokens(10)), Is.EqualTo(b0));
        Assert.That(m.Lookup(h1, h0, Tokens(20)), Is.EqualTo(b1));
        Assert.That(m.BlocksInUse, Is.EqualTo(2), "a hit takes a reference");
        Assert.That(m.CachedBlocks, Is.EqualTo(0));
        // A hit while in use shares the block.
        Assert.That(m.Lookup(h0, 0, Tokens(10)), Is.EqualTo(b0));
        Assert.That(m.RefCount(b0), Is.EqualTo(2));
    }

    [Test]
    public void TheSameTokensAfterAnotherPrefixAreAMiss()
    {
        var m = new BlockManager(4, 4);
        m.TryAllocate(out int b);
        ulong h0 = BlockManager.ChainHash(0, Tokens(10));
        ulong h1 = BlockManager.ChainHash(h0, Tokens(20));
        m.Register(b, h1, h0, Tokens(20));
        ulong other = BlockManager.ChainHash(0, Tokens(11));
        Assert.That(BlockManager.ChainHash(other, Tokens(20)), Is.Not.EqualTo(h1), "the chain hash depends on the prefix");
        Assert.That(m.Lookup(BlockManager.ChainHash(other, Tokens(20)), other, Tokens(20)), Is.EqualTo(-1));
        Assert.That(m.Lookup(h1, other, Tokens(20)), Is.EqualTo(-1), "a forged hash with another parent is refused");
        Assert.That(m.Lookup(h1, h0, Tokens(21)), Is.EqualTo(-1), "a forged hash with other tokens is refused");
    }

    [Test]
    public void EvictionTakesTheLeastRecentlyReleasedCachedBlockOnlyWhenTheFreeListIsEmpty()
    {
        var m = new BlockManager(3, 4);
        m.TryAllocate(out int a);
        m.TryAllocate(out int b);
        ulong ha = BlockManager.ChainHash(0, Tokens(1)), hb = BlockManager.ChainHash(0, Tokens(2));
        m.Register(a, ha, 0, Tokens(1));
        m.Register(b, hb, 0, Tokens(2));
        m.Release(a); // released first: the eviction candidate
        m.Release(b);
        Assert.That(m.TryAllocate(out int c), Is.True);
        Assert.That(c, Is.Not.EqualTo(a).And.Not.EqualTo(b), "the free block goes before any cached one");
        Assert.That(m.TryAllocate(out int d), Is.True);
        Assert.That(d, Is.EqualTo(a), "then the least recently used cached block");
        Assert.That(m.Lookup(ha, 0, Tokens(1)), Is.EqualTo(-1), "an evicted block's prefix is gone");
        Assert.That(m.Lookup(hb, 0, Tokens(2)), Is.EqualTo(b), "the newer one is still cached");
        Assert.That(m.TryAllocate(out _), Is.False, "all three are now in use");
    }

    [Test]
    public void ADuplicateRegistrationLeavesTheFirstBlockAsTheCachedOne()
    {
        var m = new BlockManager(2, 4);
        m.TryAllocate(out int a);
        m.TryAllocate(out int b);
        ulong h = BlockManager.ChainHash(0, Tokens(5));
        m.Register(a, h, 0, Tokens(5));
        m.Register(b, h, 0, Tokens(5));
        m.Release(b);
        Assert.That(m.CachedBlocks, Is.EqualTo(0), "the duplicate went to the free list");
        Assert.That(m.Lookup(h, 0, Tokens(5)), Is.EqualTo(a));
    }

    [Test]
    public void BadArgumentsAreNamed()
    {
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => new BlockManager(0, 16))!.ParamName, Is.EqualTo("blocks"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => new BlockManager(4, 0))!.ParamName, Is.EqualTo("blockSize"));
        var m = new BlockManager(2, 4);
        m.TryAllocate(out int a);
        Assert.Throws<ArgumentException>(() => m.Register(a, 1, 0, Tokens(0, 3)));
    }
}
