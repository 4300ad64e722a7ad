#!/usr/bin/env bash
# KV budget quality on the real TinyStories model (issue 16): perplexity with -c 512 on a text of stories the model was
# not trained on (tests/Tessera.Tests/Data/long-stories.txt, written for this), the full cache against every policy at
# budgets 256/128/64, and greedy agreement with the full cache over the first 32 tokens of prompts of 448 tokens; then
# prompt pruning (LazyLLM, SpAtten at keep 0.7/0.5/0.3): continuation perplexity of the last 64 tokens of each chunk
# and the same greedy agreement after a pruned prompt.
# Usage: scripts/kv-quality.sh [TYPE...]   (default: f32 q8_0); prints a markdown table per type.
set -euo pipefail
cd "$(dirname "$0")/.."
T=artifacts/tessera
F=tests/Tessera.Tests/Data/long-stories.txt
types=("$@"); [ ${#types[@]} -gt 0 ] || types=(f32 q8_0)
for type in "${types[@]}"; do
  M=../shared/models/tinystories-656k-$type.gguf
  echo "### TinyStories-656K $type, -c 512, $(basename $F)"
  echo "| policy | budget | PPL | vs full | greedy agreement (32 tokens) | common prefix |"
  echo "|---|---|---|---|---|---|"
  full=$($T perplexity -m "$M" -f "$F" -c 512 2>/dev/null | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
  echo "| full | 512 | $full | 1.000 | 100% | 32 |"
  for policy in "window --kv-sinks 0" window h2o keyformer snapkv; do
    for budget in 256 128 64; do
      out=$($T perplexity -m "$M" -f "$F" -c 512 --kv-budget $budget --kv-policy $policy --agreement 2>/dev/null)
      ppl=$(echo "$out" | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
      agr=$(echo "$out" | sed -n 's/.*model: \([0-9.]*%\).*/\1/p')
      pre=$(echo "$out" | sed -n 's/.*common prefix \([0-9.]*\) tokens.*/\1/p')
      name=$(echo "$policy" | sed 's/ --kv-sinks 0/ (no sinks)/')
      echo "| $name | $budget | $ppl | $(python3 -c "print(f'{$ppl/$full:.3f}')") | $agr | $pre |"
    done
  done
  echo
  echo "### TinyStories-656K $type, -c 512 --score-last 64, prompt pruning"
  echo "| method | keep | continuation PPL | vs full | greedy agreement (32 tokens) | common prefix |"
  echo "|---|---|---|---|---|---|"
  full=$($T perplexity -m "$M" -f "$F" -c 512 --score-last 64 2>/dev/null | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
  echo "| full | 1 | $full | 1.000 | 100% | 32 |"
  for method in lazyllm spatten; do
    for keep in 0.7 0.5 0.3; do
      out=$($T perplexity -m "$M" -f "$F" -c 512 --score-last 64 --prefill-pruning $method --keep $keep --agreement 2>/dev/null)
      ppl=$(echo "$out" | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
      agr=$(echo "$out" | sed -n 's/.*model: \([0-9.]*%\).*/\1/p')
      pre=$(echo "$out" | sed -n 's/.*common prefix \([0-9.]*\) tokens.*/\1/p')
      echo "| $method | $keep | $ppl | $(python3 -c "print(f'{$ppl/$full:.3f}')") | $agr | $pre |"
    done
  done
  echo
done
