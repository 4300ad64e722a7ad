namespace Tessera.Constraints;

/// <summary>Collects rules as the GBNF parser reads them and checks the result: every rule defined, none
/// left-recursive, the root able to match something.</summary>
internal sealed class GrammarBuilder(string source)
{
    /// <summary>An element while building: a byte set (index) or a rule (index).</summary>
    internal readonly record struct Item(bool IsRule, int Index);

    private readonly List<ulong> _sets = [];
    private readonly Dictionary<(ulong, ulong, ulong, ulong), int> _setIds = [];
    private readonly List<List<List<Item>>?> _rules = [];
    private readonly List<string> _names = [];
    private readonly Dictionary<string, int> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _firstUse = new(StringComparer.Ordinal);

    /// <summary>The id of the named rule, declared on first use (it must be defined by the end).</summary>
    public int RuleId(string name, int line = 0)
    {
        if (_byName.TryGetValue(name, out int id)) return id;
        id = _rules.Count;
        _rules.Add(null);
        _names.Add(name);
        _byName[name] = id;
        _firstUse[name] = line;
        return id;
    }

    public bool IsDefined(int rule) => _rules[rule] is not null;

    /// <summary>Defines a rule (named or generated) with its alternatives.</summary>
    public void Define(int rule, List<List<Item>> alternatives) => _rules[rule] = alternatives;

    /// <summary>A fresh rule for a group, repetition or class, named after the rule it serves.</summary>
    public int NewRule(string hint, List<List<Item>> alternatives)
    {
        int id = RuleId($"{hint}-{_rules.Count}");
        _rules[id] = alternatives;
        return id;
    }

    public Item ByteSet(ReadOnlySpan<ulong> bits)
    {
        var key = (bits[0], bits[1], bits[2], bits[3]);
        if (!_setIds.TryGetValue(key, out int id))
        {
            id = _sets.Count / 4;
            _sets.AddRange(bits);
            _setIds[key] = id;
        }
        return new Item(false, id);
    }

    public Item Byte(byte b)
    {
        Span<ulong> bits = stackalloc ulong[4];
        bits[b >> 6] |= 1UL << (b & 63);
        return ByteSet(bits);
    }

    /// <summary>The element for a set of code-point ranges: one byte set when all are ASCII, else a rule whose
    /// alternatives are the UTF-8 byte sequences of the ranges.</summary>
    public Item CodePoints(List<(int Lo, int Hi)> ranges, string hint)
    {
        Span<ulong> ascii = stackalloc ulong[4];
        ascii.Clear();
        var alternatives = new List<List<Item>>();
        bool anyAscii = false;
        foreach (var (lo, hi) in ranges)
        {
            for (int c = lo; c <= Math.Min(hi, 0x7F); c++) { ascii[c >> 6] |= 1UL << (c & 63); anyAscii = true; }
            if (hi <= 0x7F) continue;
            foreach (var seq in Utf8Ranges.Split(Math.Max(lo, 0x80), hi))
            {
                var alt = new List<Item>(seq.Count);
                foreach (var (a, b) in seq) alt.Add(ByteRange(a, b));
                alternatives.Add(alt);
            }
        }
        if (alternatives.Count == 0) return ByteSet(ascii);  // possibly empty: a class that matches nothing
        if (anyAscii) alternatives.Insert(0, [ByteSet(ascii)]);
        return new Item(true, NewRule(hint, alternatives));
    }

    public Item ByteRange(byte lo, byte hi)
    {
        Span<ulong> bits = stackalloc ulong[4];
        bits.Clear();
        for (int c = lo; c <= hi; c++) bits[c >> 6] |= 1UL << (c & 63);
        return ByteSet(bits);
    }

    /// <summary>Checks and flattens the rules into a <see cref="Grammar"/> starting at <paramref name="root"/>.</summary>
    public Grammar Build(string root)
    {
        if (!_byName.TryGetValue(root, out int rootId) || _rules[rootId] is null)
            throw new FormatException($"{source}: no '{root} ::= ...' rule: the grammar must define {root}");
        for (int r = 0; r < _rules.Count; r++)
            if (_rules[r] is null)
                throw new FormatException($"{source}: line {_firstUse[_names[r]]}: rule '{_names[r]}' is used but never defined");
        var rules = _rules.Select(r => r!).ToArray();
        CheckLeftRecursion(rules);
        if (!Productive(rules)[rootId])
            throw new FormatException($"{source}: the grammar can never match anything (rule '{root}' has no finite match)");
        var kind = new List<byte>();
        var arg = new List<int>();
        var starts = new int[rules.Length][];
        for (int r = 0; r < rules.Length; r++)
        {
            starts[r] = new int[rules[r].Count];
            for (int a = 0; a < rules[r].Count; a++)
            {
                starts[r][a] = kind.Count;
                foreach (var item in rules[r][a])
                {
                    kind.Add(item.IsRule ? Grammar.Rule : Grammar.Bytes);
                    arg.Add(item.Index);
                }
                kind.Add(Grammar.End);
                arg.Add(0);
            }
        }
        return new Grammar([.. kind], [.. arg], [.. _sets], starts, [.. _names], rootId, source);
    }

    private bool EmptySet(int set) => _sets[set * 4] == 0 && _sets[set * 4 + 1] == 0 && _sets[set * 4 + 2] == 0 && _sets[set * 4 + 3] == 0;

    /// <summary>Rules that can match some finite byte string (a fixed point from the rules with an all-terminal alternative).</summary>
    private bool[] Productive(List<List<Item>>[] rules)
    {
        var ok = new bool[rules.Length];
        for (bool changed = true; changed;)
        {
            changed = false;
            for (int r = 0; r < rules.Length; r++)
                if (!ok[r] && rules[r].Any(alt => alt.All(i => i.IsRule ? ok[i.Index] : !EmptySet(i.Index))))
                    ok[r] = changed = true;
        }
        return ok;
    }

    /// <summary>Refuses a rule that can reach itself without consuming a byte: a matcher would expand it forever
    /// (llama.cpp refuses the same).</summary>
    private void CheckLeftRecursion(List<List<Item>>[] rules)
    {
        var nullable = new bool[rules.Length];
        for (bool changed = true; changed;)
        {
            changed = false;
            for (int r = 0; r < rules.Length; r++)
                if (!nullable[r] && rules[r].Any(alt => alt.All(i => i.IsRule && nullable[i.Index])))
                    nullable[r] = changed = true;
        }
        // r -> s when s can come first in r (after rules that match the empty string).
        var first = new List<int>[rules.Length];
        for (int r = 0; r < rules.Length; r++)
        {
            first[r] = [];
            foreach (var alt in rules[r])
                foreach (var i in alt)
                {
                    if (!i.IsRule) break;
                    first[r].Add(i.Index);
                    if (!nullable[i.Index]) break;
                }
        }
        var state = new byte[rules.Length]; // 0 unseen, 1 on the path, 2 done
        var stack = new Stack<(int Rule, int Next)>();
        for (int start = 0; start < rules.Length; start++)
        {
            if (state[start] != 0) continue;
            stack.Push((start, 0));
            state[start] = 1;
            while (stack.Count > 0)
            {
                var (r, next) = stack.Pop();
                if (next < first[r].Count)
                {
                    stack.Push((r, next + 1));
                    int s = first[r][next];
                    if (state[s] == 1)
                        throw new FormatException($"{source}: rule '{Display(s)}' is left-recursive (it can reach itself before matching a byte); rewrite it with repetition (x ::= y z*)");
                    if (state[s] == 0) { state[s] = 1; stack.Push((s, 0)); }
                }
                else state[r] = 2;
            }
        }
    }

    private string Display(int rule)
    {
        string n = _names[rule];
        int dash = n.LastIndexOf('-');
        return dash > 0 && int.TryParse(n.AsSpan(dash + 1), out _) ? n[..dash] : n;
    }
}
