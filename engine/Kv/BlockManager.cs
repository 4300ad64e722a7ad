namespace Tessera.Kv;

/// <summary>
/// Hands out the physical blocks of a paged KV cache (backend-agnostic: it only counts ids). A block is free,
/// in use (reference count above zero), or cached: full, identified by the hash of its tokens chained with the
/// hash of every token before it (as vLLM's prefix cache), and unreferenced. Cached blocks wait in an LRU list so
/// that a later prompt with the same prefix reuses them; they are evicted, oldest first, when the free list is empty.
/// Not thread-safe: the scheduler's loop is its only user.
/// </summary>
public sealed class BlockManager
{
    private const int None = -1;
    private readonly int[] _refs;
    private readonly Stack<int> _free;
    // Per block: its chain hash and tokens while it is registered for prefix reuse (tokens are compared on a hit,
    // so a 64-bit hash collision cannot hand out the wrong keys and values).
    private readonly ulong[] _hash;
    private readonly ulong[] _parentHash;
    private readonly int[][] _tokens;
    private readonly bool[] _registered;
    private readonly Dictionary<ulong, int> _byHash = new();
    // Intrusive LRU of cached unreferenced blocks: _prev/_next links, oldest at _lruHead.
    private readonly int[] _prev, _next;
    private int _lruHead = None, _lruTail = None, _lruCount;

    /// <summary>A pool of <paramref name="blocks"/> blocks of <paramref name="blockSize"/> positions.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A count is not positive.</exception>
    public BlockManager(int blocks, int blockSize)
    {
        if (blocks <= 0) throw new ArgumentOutOfRangeException(nameof(blocks), $"KV blocks {blocks}: must be positive");
        if (blockSize <= 0) throw new ArgumentOutOfRangeException(nameof(blockSize), $"KV block size {blockSize}: must be positive");
        TotalBlocks = blocks;
        BlockSize = blockSize;
        _refs = new int[blocks];
        _hash = new ulong[blocks];
        _parentHash = new ulong[blocks];
        _tokens = new int[blocks][];
        _registered = new bool[blocks];
        _prev = new int[blocks];
        _next = new int[blocks];
        _free = new Stack<int>(blocks);
        // Pushed in reverse so block 0 is handed out first (readable tests and dumps).
        for (int b = blocks - 1; b >= 0; b--) _free.Push(b);
    }

    /// <summary>Blocks in the pool.</summary>
    public int TotalBlocks { get; }

    /// <summary>Positions per block.</summary>
    public int BlockSize { get; }

    /// <summary>Blocks referenced by at least one sequence.</summary>
    public int BlocksInUse => TotalBlocks - _free.Count - _lruCount;

    /// <summary>Cached blocks nobody references (reusable by a prefix hit, evictable).</summary>
    public int CachedBlocks => _lruCount;

    /// <summary>Blocks an allocation can still get: free plus evictable cached ones.</summary>
    public int AvailableBlocks => _free.Count + _lruCount;

    /// <summary>References held on <paramref name="block"/>.</summary>
    public int RefCount(int block) => _refs[block];

    /// <summary>Takes a fresh block (reference count 1), evicting the least recently used cached block when the
    /// free list is empty. Returns false, and changes nothing, when every block is in use.</summary>
    public bool TryAllocate(out int block)
    {
        if (_free.Count > 0) block = _free.Pop();
        else if (_lruHead != None)
        {
            block = _lruHead;
            Unlink(block);
            Unregister(block);
        }
        else
        {
            block = None;
            return false;
        }
        _refs[block] = 1;
        return true;
    }

    /// <summary>Adds a reference to a block in use (a sequence sharing it).</summary>
    /// <exception cref="InvalidOperationException">The block is not in use.</exception>
    public void AddRef(int block)
    {
        if (_refs[block] <= 0) throw new InvalidOperationException($"KV block {block} is not in use");
        _refs[block]++;
    }

    /// <summary>Drops a reference. At zero the block goes to the LRU cache when it is registered for reuse, else to
    /// the free list.</summary>
    /// <exception cref="InvalidOperationException">The block holds no reference (a double free).</exception>
    public void Release(int block)
    {
        if (_refs[block] <= 0) throw new InvalidOperationException($"KV block {block} released more often than taken");
        if (--_refs[block] > 0) return;
        if (_registered[block]) LinkTail(block);
        else _free.Push(block);
    }

    /// <summary>Cuts the sequence whose block table is <paramref name="table"/> back to its first
    /// <paramref name="length"/> positions: the blocks past the last one still needed are released and removed from
    /// the table (rejected draft tokens, a rewound conversation). The last kept block may be partial; its dropped
    /// positions are overwritten before anything reads them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The length is negative or past the table.</exception>
    public void Truncate(List<int> table, int length)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (length < 0 || length > (long)table.Count * BlockSize)
            throw new ArgumentOutOfRangeException(nameof(length), $"length {length}: the table covers {table.Count * BlockSize} positions");
        int keep = (length + BlockSize - 1) / BlockSize;
        for (int i = table.Count - 1; i >= keep; i--) Release(table[i]);
        table.RemoveRange(keep, table.Count - keep);
    }

    /// <summary>
    /// Forks the sequence whose first <paramref name="length"/> positions are in <paramref name="table"/> into
    /// <paramref name="child"/> (emptied first): every full block is shared by reference; a partial last block is
    /// copied on write, i.e. the child gets a fresh block, and <paramref name="copy"/> says which block's first
    /// <c>length % BlockSize</c> slots the caller must copy into which (the backend's CopyKv), so that both sequences
    /// can append without touching each other's positions. Returns false, and changes nothing, when no block is free
    /// for the copy. Forks are what n > 1 choices, beam-like search and trial continuations start from.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The length is negative or past the table.</exception>
    public bool TryFork(IReadOnlyList<int> table, int length, List<int> child, out (int From, int To, int Slots) copy)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(child);
        if (length < 0 || length > (long)table.Count * BlockSize)
            throw new ArgumentOutOfRangeException(nameof(length), $"length {length}: the table covers {table.Count * BlockSize} positions");
        copy = default;
        int full = length / BlockSize, partial = length % BlockSize;
        int fresh = None;
        if (partial > 0 && !TryAllocate(out fresh)) return false;
        child.Clear();
        for (int i = 0; i < full; i++)
        {
            AddRef(table[i]);
            child.Add(table[i]);
        }
        if (partial > 0)
        {
            child.Add(fresh);
            copy = (table[full], fresh, partial);
        }
        return true;
    }

    /// <summary>The chain hash of a full block: its tokens mixed into the hash of everything before it
    /// (<paramref name="parent"/> = 0 for the first block).</summary>
    public static ulong ChainHash(ulong parent, ReadOnlySpan<int> tokens)
    {
        // FNV-1a over the parent hash and the token ids, then a splitmix finaliser to spread the bits.
        ulong h = 14695981039346656037UL ^ parent;
        foreach (int t in tokens)
        {
            h ^= (uint)t;
            h *= 1099511628211UL;
        }
        h ^= h >> 30; h *= 0xbf58476d1ce4e5b9UL;
        h ^= h >> 27; h *= 0x94d049bb133111ebUL;
        h ^= h >> 31;
        return h;
    }

    /// <summary>Finds the cached block holding <paramref name="tokens"/> after the prefix hashed to
    /// <paramref name="parent"/>, takes a reference on it and returns it; -1 when there is none.</summary>
    public int Lookup(ulong hash, ulong parent, ReadOnlySpan<int> tokens)
    {
        if (!_byHash.TryGetValue(hash, out int block)) return None;
        if (_parentHash[block] != parent || !tokens.SequenceEqual(_tokens[block])) return None;
        if (_refs[block] == 0) Unlink(block);
        _refs[block]++;
        return block;
    }

    /// <summary>Registers a full block in use for prefix reuse under <paramref name="hash"/>. When another block
    /// already holds that content the call does nothing (the duplicate simply frees when released).</summary>
    public void Register(int block, ulong hash, ulong parent, ReadOnlySpan<int> tokens)
    {
        if (tokens.Length != BlockSize) throw new ArgumentException($"a block holds {BlockSize} tokens, got {tokens.Length}", nameof(tokens));
        if (_refs[block] <= 0) throw new InvalidOperationException($"KV block {block} is not in use");
        if (_registered[block] || _byHash.ContainsKey(hash)) return;
        _registered[block] = true;
        _hash[block] = hash;
        _parentHash[block] = parent;
        _tokens[block] = tokens.ToArray();
        _byHash[hash] = block;
    }

    private void Unregister(int block)
    {
        _byHash.Remove(_hash[block]);
        _registered[block] = false;
        _tokens[block] = null!;
    }

    private void LinkTail(int block)
    {
        _prev[block] = _lruTail;
        _next[block] = None;
        if (_lruTail != None) _next[_lruTail] = block;
        else _lruHead = block;
        _lruTail = block;
        _lruCount++;
    }

    private void Unlink(int block)
    {
        int p = _prev[block], n = _next[block];
        if (p != None) _next[p] = n; else _lruHead = n;
        if (n != None) _prev[n] = p; else _lruTail = p;
        _lruCount--;
    }
}
