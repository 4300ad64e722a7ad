#!/usr/bin/env bash
# llama.cpp's references for the architectures past Llama (issue 17), made on this machine and kept out of the
# repository: random-weight files written by `tessera synth` (TinyStories' tokenizer) at a small and a real shape of
# each family, run through Debian's llama-server (scripts/fetch-llama-bench.sh). Per file and prompt, one JSON: the
# prompt, llama.cpp's tokens of it, 16 greedy tokens and the top-10 log-probabilities before each of them
# (llama-server's /completion with n_probs; flash attention off, the CPU path Tessera follows). The shared
# rand-llama-d256 files get the same treatment as a control. tests/Tessera.Tests/Golden/ArchGoldenTests.cs compares
# Tessera with them.
# Usage: scripts/arch-golden.sh [OUT]   (default .cache/arch-golden; a file already done is skipped)
#   TESSERA_ARCH_REAL_TYPES="q4_k_m f16"  types of the real shapes (default q4_k_m; the small ones get f32 f16 q8_0 q4_k_m)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.cache/arch-golden}"
# The published command (./build.sh), else the build's own (./build.sh test builds the solution, not the publish).
T=artifacts/tessera
[ -x "$T" ] || T=cli/bin/Release/net10.0/tessera
tok=../shared/models/tinystories-656k-f32.gguf
prompts=../shared/golden/prompts.txt
[ -x "$T" ] || { echo "arch-golden.sh: needs artifacts/tessera or cli/bin/Release/net10.0/tessera (./build.sh)" >&2; exit 1; }
[ -s "$tok" ] && [ -s "$prompts" ] || { echo "arch-golden.sh: needs $tok and $prompts" >&2; exit 1; }
[ -x .cache/llama.cpp/llama-server ] || scripts/fetch-llama-bench.sh >/dev/null
server=.cache/llama.cpp/llama-server
mkdir -p "$out"
real_types=(${TESSERA_ARCH_REAL_TYPES:-q4_k_m})
port=$((20000 + RANDOM % 20000))

reference() {  # NAME FILE: the references of one file
  local name=$1 file=$2 dir="$out/$1"
  [ -f "$dir/done" ] && return 0
  rm -rf "$dir"; mkdir -p "$dir"
  "$server" -m "$file" --port "$port" -t "$(nproc)" -c 512 -np 1 --no-warmup -fa off >"$dir/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 120); do curl -fs "localhost:$port/health" >/dev/null 2>&1 && break; sleep 0.5; done
  if ! python3 - "$port" "$prompts" "$dir" <<'PY'
import json, sys, urllib.request
port, prompts, out = sys.argv[1], sys.argv[2], sys.argv[3]
def post(path, body):
    req = urllib.request.Request(f"http://localhost:{port}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=600))
lines = [l.rstrip("\n") for l in open(prompts, encoding="utf-8") if l.strip()][:4]
for i, text in enumerate(lines):
    tokens = post("/tokenize", {"content": text, "add_special": True})["tokens"]
    r = post("/completion", {"prompt": tokens, "n_predict": 16, "n_probs": 10, "temperature": 0, "cache_prompt": False,
                             "return_tokens": True, "ignore_eos": True})
    steps = [{"token": p["id"], "top": [{"id": t["id"], "logprob": t["logprob"]} for t in p["top_logprobs"]]}
             for p in r["completion_probabilities"]]
    json.dump({"prompt": text, "prompt_tokens": tokens, "steps": steps}, open(f"{out}/p{i}.json", "w"))
PY
  then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; echo "arch-golden.sh: $name failed (see $dir/server.log)" >&2; return 1; fi
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  echo "$file" > "$dir/done"
  echo "arch-golden.sh: $name"
}

# The control: llama.cpp's Llama files measured the same way, to compare each family's error with Llama's.
for type in f32 f16 q8_0 q4_k_m; do reference "rand-llama-d256-$type" "../shared/models/rand-llama-d256-$type.gguf"; done
# The small Gemma shapes slide a window of 8 positions, so every prompt with its 16 tokens runs past it.
# llama3-small and llama-3.2-1b carry Llama 3.1's rope_freqs, gemma3-linear-small linear RoPE scaling on its global
# layers, phi3-small (fused QKV and gate/up) LongRoPE past its original context of 32 (so at -c 512 the long factors)
# and a window of 8 that llama.cpp ignores for Phi-3, phi-3-mini the short factors (512 within its 4096); llama-3072x32
# is Llama at phi-3-mini's dimensions, the control its error is judged against (ArchGoldenTests).
for shape in qwen2-small qwen3-small gemma2-small gemma3-small llama3-small gemma3-linear-small phi3-small \
             qwen2.5-0.5b qwen3-0.6b gemma-3-1b gemma-2-2b llama-3.2-1b phi-3-mini llama-3072x32; do
  case $shape in *-small) types=(f32 f16 q8_0 q4_k_m) ;; *) types=("${real_types[@]}") ;; esac
  for type in "${types[@]}"; do
    name=$shape-$type file="$out/$shape-$type.gguf"
    [ -s "$file" ] || "$T" synth --shape "$shape" --type "$type" -o "$file" --tokenizer-from "$tok" >/dev/null 2>&1
    reference "$name" "$file"
  done
done
