namespace Tessera.Constraints;

/// <summary>
/// Where a <see cref="Grammar"/> is, after the bytes so far: the set of parse stacks that are still alive, as in
/// llama.cpp's grammar engine, but over bytes. A stack is a node (an element to match next, and the stack to return
/// to when its rule ends); nodes are hash-consed, so equal stacks are one id, sets are small arrays of ids, and the
/// closure of a node (every stack it expands to, down to a byte set or the end) is computed once and cached. Checking
/// a token's bytes against the state therefore costs a few array walks and, once warm, allocates nothing.
/// </summary>
public sealed class GrammarMatcher
{
    private const int Accept = 0;  // the node standing for "the root rule is complete"
    private readonly Grammar _g;
    private readonly List<int> _off = [-1], _parent = [-1];
    private readonly List<int[]?> _closure = [null];
    private readonly List<int[]?> _successors = [null];  // a byte-set node's stacks once its byte is matched
    private readonly Dictionary<long, int> _intern = [];
    private int[] _mark = new int[64];
    private int _stamp;
    private int[] _current;
    private int _count;
    private int[] _a = new int[16], _b = new int[16];
    private int _allowedCount;  // stacks after the last Allows that returned true

    /// <summary>A matcher at the start of <paramref name="grammar"/>.</summary>
    public GrammarMatcher(Grammar grammar)
    {
        _g = grammar;
        var start = new List<int>();
        foreach (int alt in grammar.Alternatives[grammar.Root])
            foreach (int n in Closure(Intern(alt, -1)))
                if (!start.Contains(n)) start.Add(n);
        _current = [.. start];
        _count = _current.Length;
    }

    /// <summary>The grammar matched.</summary>
    public Grammar Grammar => _g;
    /// <summary>The bytes so far are a complete match (generation may end here).</summary>
    public bool CanEnd => Array.IndexOf(_current, Accept, 0, _count) >= 0;
    /// <summary>The bytes so far are a complete match and nothing may follow: generation must end.</summary>
    public bool MustEnd => _count == 1 && _current[0] == Accept;
    /// <summary>Live stacks now (for tests and statistics).</summary>
    public int StackCount => _count;
    /// <summary>Distinct stack nodes made so far (memory grows with the grammar positions visited).</summary>
    public int NodeCount => _off.Count;

    /// <summary>Whether <paramref name="bytes"/> may come next (some stack survives all of them). Changes nothing.</summary>
    public bool Allows(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return false;
        int n = _count;
        var from = _current;
        for (int i = 0; i < bytes.Length; i++)
        {
            ref int[] to = ref (i % 2 == 0 ? ref _a : ref _b);
            n = Step(from, n, bytes[i], ref to);
            if (n == 0) return false;
            from = to;
        }
        _allowedCount = n;
        return true;
    }

    /// <summary>Moves past <paramref name="bytes"/>.</summary>
    /// <exception cref="InvalidOperationException">The grammar does not allow them.</exception>
    public void Advance(ReadOnlySpan<byte> bytes)
    {
        if (!Allows(bytes)) throw new InvalidOperationException($"{_g.Source}: the grammar does not allow '{System.Text.Encoding.UTF8.GetString(bytes)}' here");
        // Allows left the stacks after the last byte in _a (odd length) or _b.
        var last = bytes.Length % 2 == 1 ? _a : _b;
        if (_current.Length < _allowedCount) _current = new int[Math.Max(_allowedCount, _current.Length * 2)];
        Array.Copy(last, _current, _allowedCount);
        _count = _allowedCount;
    }

    /// <summary>One byte from the <paramref name="count"/> stacks of <paramref name="from"/> into <paramref name="to"/>
    /// (grown if needed, deduplicated); returns the stacks that survive. Used by the vocabulary walk for full masks.</summary>
    internal int Step(int[] from, int count, byte b, ref int[] to)
    {
        if (++_stamp == int.MaxValue) { Array.Clear(_mark); _stamp = 1; }
        int n = 0;
        for (int i = 0; i < count; i++)
        {
            int node = from[i];
            if (node == Accept) continue;
            int off = _off[node];
            if (!_g.Matches(off, b)) continue;
            var successors = _successors[node] ??= Closure(Intern(off + 1, _parent[node]));
            foreach (int c in successors)
            {
                if (c >= _mark.Length) Array.Resize(ref _mark, Math.Max(_mark.Length * 2, c + 1));
                if (_mark[c] == _stamp) continue;
                _mark[c] = _stamp;
                if (n == to.Length) Array.Resize(ref to, to.Length * 2);
                to[n++] = c;
            }
        }
        return n;
    }

    /// <summary>The current stacks (for the vocabulary walk).</summary>
    internal (int[] Nodes, int Count) Current => (_current, _count);

    private int Intern(int off, int parent)
    {
        long key = ((long)off << 32) | (uint)parent;
        if (_intern.TryGetValue(key, out int id)) return id;
        id = _off.Count;
        _off.Add(off);
        _parent.Add(parent);
        _closure.Add(null);
        _successors.Add(null);
        _intern[key] = id;
        return id;
    }

    /// <summary>Every stack <paramref name="node"/> stands for once rule references are expanded and finished rules
    /// return: nodes whose element is a byte set, and <see cref="Accept"/>. The grammar has no left recursion
    /// (checked when it was built), so this ends.</summary>
    private int[] Closure(int node)
    {
        if (_closure[node] is { } done) return done;
        var result = new List<int>();
        int off = _off[node], parent = _parent[node];
        switch (_g.Kind[off])
        {
            case Grammar.Bytes:
                result.Add(node);
                break;
            case Grammar.End:
                if (parent < 0) result.Add(Accept);
                else result.AddRange(Closure(parent));
                break;
            default:
                int ret = Intern(off + 1, parent);
                foreach (int alt in _g.Alternatives[_g.Arg[off]])
                    foreach (int c in Closure(Intern(alt, ret)))
                        if (!result.Contains(c)) result.Add(c);
                break;
        }
        var array = result.Distinct().ToArray();
        _closure[node] = array;
        return array;
    }
}
