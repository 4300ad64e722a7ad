namespace Tessera.Pruning;

/// <summary>How a prompt's tokens are ranked for pruning.</summary>
public enum PruningMethod
{
    /// <summary>LazyLLM (Fu et al. 2024): at each pruning layer, the attention the prompt's last token gave each token in
    /// the layer before.</summary>
    LazyLlm,
    /// <summary>SpAtten (Wang et al. 2021): cascade pruning by cumulative attention, every query of the prompt and every
    /// head summed over all layers so far, divided by the number of queries that could see the token (the causal
    /// mask's bias toward early tokens removed); a token removed stays removed.</summary>
    SpAtten,
}

/// <summary>
/// Prompt pruning (<c>--prefill-pruning lazyllm|spatten --keep K</c>): the prompt runs as one step, and from a few
/// layers on only its best-ranked tokens go on (the last token always does); the others keep the keys and values
/// of the layers they ran and are skipped by attention above them, in this step and every later one. The schedule
/// is progressive: at layers L/4, L/2 and 3L/4 of L the prompt keeps K, K^1.5 and K^2 of its tokens (K = 0.5: 50%,
/// 35%, 25%), so the deep layers, where attention is most concentrated, run the fewest tokens, and the work saved
/// grows with depth as in LazyLLM's schedule; K = 1 prunes nothing and changes no bit.
/// </summary>
public sealed record PrefillPruningOptions
{
    /// <summary>How tokens are ranked.</summary>
    public PruningMethod Method { get; init; } = PruningMethod.LazyLlm;
    /// <summary>Share of the prompt kept at the first pruning layer, in (0, 1].</summary>
    public double Keep { get; init; } = 0.5;

    /// <summary>The method of a name users pass: lazyllm, spatten.</summary>
    /// <exception cref="ArgumentException">No method has that name.</exception>
    public static PruningMethod ParseMethod(string name) => name.ToLowerInvariant() switch
    {
        "lazyllm" => PruningMethod.LazyLlm,
        "spatten" => PruningMethod.SpAtten,
        _ => throw new ArgumentException($"--prefill-pruning '{name}': unknown (lazyllm, spatten)"),
    };

    /// <summary>The name users pass for <paramref name="method"/>.</summary>
    public static string NameOf(PruningMethod method) => method == PruningMethod.LazyLlm ? "lazyllm" : "spatten";

    /// <summary>Checks <see cref="Keep"/>.</summary>
    /// <exception cref="ArgumentException">Keep is outside (0, 1].</exception>
    public void Validate()
    {
        if (!(Keep > 0 && Keep <= 1)) throw new ArgumentException($"--keep {Keep}: must be in (0, 1]");
    }

    /// <summary>Checks that <paramref name="backend"/> can prune (it must compute attention scores).</summary>
    /// <exception cref="ArgumentException">It does not.</exception>
    public void CheckBackend(Backends.IBackend backend)
    {
        if (!backend.ComputesAttentionScores)
            throw new ArgumentException($"--prefill-pruning ranks the prompt's tokens by attention, which the {backend.Name} backend does not compute; use --backend cpu", nameof(Method));
    }

    /// <summary>Checks that a model of <paramref name="config"/> can prune its prompts.</summary>
    /// <exception cref="ArgumentException">Its attention has a sliding window or a soft cap (Gemma): the pruned rows'
    /// cache positions are not their positions, and the scores pruning ranks by are plain attention's.</exception>
    public void CheckModel(Model.LlamaConfig config)
    {
        if (config.HasAttentionVariants)
            throw new ArgumentException($"--prefill-pruning: not supported for {config.Architecture} models yet (their sliding-window or soft-capped attention)", nameof(Method));
    }

    /// <summary>The pruning layers of a model of <paramref name="layers"/> layers and the share of the prompt that goes
    /// on from each (cumulative, decreasing).</summary>
    public IReadOnlyList<(int Layer, double Keep)> Schedule(int layers)
    {
        var stages = new List<(int, double)>();
        for (int i = 1; i <= 3; i++)
        {
            int layer = Math.Max(1, (int)Math.Round(i * layers / 4.0));
            if (layer >= layers || stages.Count > 0 && stages[^1].Item1 >= layer) continue;
            stages.Add((layer, Math.Pow(Keep, (i + 1) / 2.0)));
        }
        return stages;
    }

    /// <summary>A fresh ranking object for one prompt.</summary>
    internal IPrefillPruner CreatePruner(IReadOnlyList<(int Layer, double Keep)> schedule, int rows) => Method == PruningMethod.LazyLlm
        ? new LazyLlmPruner(schedule, rows)
        : new SpAttenPruner(schedule[^1].Layer, rows);
}
