using System.Numerics.Tensors;
using Tessera.Kv;
using Tessera.Model;
using Tessera.Pruning;

namespace Tessera.Evaluation;

/// <summary>How closely greedy decoding under a KV budget or after a pruned prompt follows the full model: over prompts cut from a text,
/// the share of the first tokens that equal the full model's, position by position, and the mean length of the
/// common prefix.</summary>
/// <param name="Prompts">Prompts compared.</param>
/// <param name="Tokens">Tokens compared per prompt.</param>
/// <param name="Agreement">Share of positions where both chose the same token.</param>
/// <param name="MeanCommonPrefix">Mean number of tokens before the first difference.</param>
public sealed record GreedyAgreementResult(int Prompts, int Tokens, double Agreement, double MeanCommonPrefix);

/// <summary>Greedy agreement of a budgeted cache or a pruned prompt with the full model (<c>tessera perplexity
/// --agreement</c>).</summary>
public static class GreedyAgreement
{
    /// <summary>Prompts of <paramref name="promptLength"/> tokens at every <paramref name="promptLength"/>-th token of
    /// <paramref name="text"/> (BOS first), each continued greedily for <paramref name="tokens"/> tokens by the full
    /// model and under <paramref name="budget"/> or after its prompt pruned by <paramref name="pruning"/> (one of them).</summary>
    public static GreedyAgreementResult Run(LoadedModel m, string text, KvBudgetOptions? budget, PrefillPruningOptions? pruning, int promptLength, int tokens)
    {
        if ((budget is null) == (pruning is null)) throw new ArgumentException("greedy agreement compares one KV budget or one prompt pruning with the full model");
        if (promptLength + tokens > m.Config.ContextLength)
            throw new ArgumentException($"prompts of {promptLength} + {tokens} tokens pass the model's context of {m.Config.ContextLength}");
        var tok = m.Tokenizer;
        var all = tok.Encode(text, false);
        // Room for the prompt in one step, as a pruned prompt needs (a budget still cuts it at its 256-position
        // boundaries; every op works row by row, so the batching changes no number).
        using var full = m.Model.CreateState(promptLength + tokens + 1, promptLength);
        using var other = m.Model.CreateState(promptLength + tokens + 1, promptLength);
        var a = new int[tokens];
        var b = new int[tokens];
        var prompt = new int[promptLength];
        int prompts = 0;
        long same = 0, prefix = 0;
        for (int start = 0; start + promptLength <= all.Count; start += promptLength)
        {
            prompt[0] = tok.BosId ?? all[start];
            for (int i = 1; i < promptLength; i++) prompt[i] = all[start + i];
            Greedy(m.Model, full, null, null, prompt, a);
            Greedy(m.Model, other, budget, pruning, prompt, b);
            int k = 0;
            while (k < tokens && a[k] == b[k]) k++;
            prefix += k;
            for (int i = 0; i < tokens; i++) if (a[i] == b[i]) same++;
            prompts++;
        }
        if (prompts == 0) throw new ArgumentException($"the text is {all.Count} tokens, shorter than one prompt of {promptLength}");
        return new GreedyAgreementResult(prompts, tokens, same / (double)(prompts * tokens), prefix / (double)prompts);
    }

    private static void Greedy(LlamaModel model, RunState state, KvBudgetOptions? budget, PrefillPruningOptions? pruning, int[] prompt, int[] output)
    {
        state.Rewind(0);             // also resets the budget and a pruned prompt's holes
        state.UseKvBudget(budget);
        state.UsePrefillPruning(pruning);   // armed for the next prompt step
        if (state.KvPolicy is { } p) { p.Horizon = output.Length; p.PromptEnd = prompt.Length; }
        model.Forward(state, prompt);
        var one = new int[1];
        for (int i = 0; i < output.Length; i++)
        {
            output[i] = one[0] = TensorPrimitives.IndexOfMax<float>(state.Logits);
            if (i + 1 < output.Length) model.Forward(state, one);
        }
    }
}
