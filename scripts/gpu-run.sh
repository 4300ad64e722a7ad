#!/usr/bin/env bash
# The GPU-side run in one command (no .NET needed there): the NativeAOT `tessera` from scripts/gpu-publish.sh, with
# the PTX embedded, runs
#   1. test-ops --backend cuda   every op case on the CUDA backend against the CPU backend (errors and times)
#   2. golden --backend cuda     llama.cpp's golden outputs for every model in the shared folder
#   3. bench --backend cuda      pp512 and tg128 on random llama-3.2-1b weights (synthesized here), F16 and Q4_K_M,
#                                against the device's measured copy bandwidth
#   (after 4.) Gemma 3: small-shape greedy text on the device against the host, bench of the 1B shape (Q4_K_M)
#   4. bench --concurrency       the continuous-batching scheduler on CUDA (paged KV cache, ragged batches): 1, 4 and
#                                16 concurrent requests on the Q4_K_M model
# Results go under $OUT (default ./gpu-out): device.txt, summary.txt, one NAME.txt per step, bench-TYPE.json.
# The shared data folder (golden/, models/) is $TESSERA_SHARED, else ../shared, else ./shared. The synthesized models
# (about 2.5 GB for F16) go to $TESSERA_WORK (default ${TMPDIR:-/tmp}/tessera-gpu), not to $OUT.
# Exit code: non-zero when a step failed or the CUDA backend could not start.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-./gpu-out}"
bin="${TESSERA_BIN:-artifacts/aot/tessera}"
shared="${TESSERA_SHARED:-}"
if [ -z "$shared" ]; then if [ -d ../shared/golden ]; then shared=../shared; else shared=shared; fi; fi
work="${TESSERA_WORK:-${TMPDIR:-/tmp}/tessera-gpu}"
mkdir -p "$out" "$work"
: > "$out/summary.txt"
[ -x "$bin" ] || { echo "gpu-run.sh: $bin not found; run scripts/gpu-publish.sh first" >&2; exit 1; }
status=0

{ date -u +"%Y-%m-%dT%H:%M:%SZ"; uname -a
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv 2>&1 || echo "nvidia-smi failed"
} > "$out/device.txt"
cat "$out/device.txt"

run_step() {  # name, then the command
  local name="$1"; shift
  echo "== $name: $*"
  local t0=$SECONDS
  "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  tail -n 5 "$out/$name.txt"
  echo "$name exit code $rc ($((SECONDS - t0)) s)" | tee -a "$out/summary.txt"
  [ $rc = 0 ] || status=1
  return $rc
}

run_step test-ops "$bin" test-ops --backend cuda
if [ $? = 3 ]; then echo "gpu-run.sh: the CUDA backend cannot start (see $out/test-ops.txt); nothing else to run" >&2; exit 1; fi
if [ -d "$shared/golden" ]; then
  run_step golden "$bin" golden "$shared" --backend cuda
else
  echo "golden: no shared folder with golden/ at '$shared' (set TESSERA_SHARED); skipped" | tee -a "$out/summary.txt"
  status=1
fi
# Sampling on the device against sampling on the host (TESSERA_DEVICE_SAMPLING=0): the same seed must give the same text.
story="$shared/models/tinystories-656k-q8_0.gguf"
if [ -s "$story" ]; then
  gen=(generate -m "$story" -p "Once upon a time" -n 64 --temp 0.8 --seed 7 --no-display-prompt --backend cuda)
  run_step generate-device "$bin" "${gen[@]}"
  TESSERA_DEVICE_SAMPLING=0 run_step generate-host "$bin" "${gen[@]}"
  if cmp -s <(grep -v "^prompt: " "$out/generate-device.txt") <(grep -v "^prompt: " "$out/generate-host.txt"); then
    echo "device sampling: same text as host sampling" | tee -a "$out/summary.txt"
  else
    echo "device sampling: DIFFERENT text from host sampling (see generate-device.txt, generate-host.txt)" | tee -a "$out/summary.txt"
    status=1
  fi
fi
for type in f16 q4_k_m; do
  model="$work/llama-3.2-1b-$type.gguf"
  if [ ! -s "$model" ]; then
    run_step "synth-$type" "$bin" synth --shape llama-3.2-1b --type "$type" -o "$model" \
      --tokenizer-from "$shared/models/tinystories-656k-q8_0.gguf" || continue
  fi
  run_step "bench-$type" "$bin" bench -m "$model" -p 512 -n 128 -r 3 --backend cuda --json "$out/bench-$type.json"
done
model="$work/llama-3.2-1b-q4_k_m.gguf"
if [ -s "$model" ]; then
  run_step serve-bench-q4_k_m "$bin" bench -m "$model" --concurrency 1,4,16 -p 128 -n 64 --backend cuda
  # KV budgets and prompt pruning on the device: decode under h2o/snapkv budgets (the attention_scores kernels run
  # every layer) against the full cache, and time to first token with LazyLLM at keep 0.5.
  run_step kv-budget-q4_k_m "$bin" bench -m "$model" --kv-budget-bench h2o,snapkv -p 1024 -n 64 -r 3 --backend cuda
  run_step prefill-pruning-q4_k_m "$bin" bench -m "$model" --prefill-pruning lazyllm --keep 0.5 -p 1024,2048 -n 0 -r 3 --backend cuda
else
  echo "serve-bench: no $model (its synth step failed); skipped" | tee -a "$out/summary.txt"
  status=1
fi
# Gemma 3 on the device (sliding windows and GeGLU in the kernels): the small shape's greedy text against the host's
# (its window of 8 is crossed), and the 1B shape's speed.
gm="$work/gemma3-small-f32.gguf"
if run_step synth-gemma3-small "$bin" synth --shape gemma3-small --type f32 -o "$gm" --tokenizer-from "$shared/models/tinystories-656k-q8_0.gguf"; then
  "$bin" generate -m "$gm" -p "Lily and Ben went to the park. They saw a big" -n 48 --temp 0 --no-display-prompt > "$out/gemma-host.txt" 2>/dev/null || true
  "$bin" generate -m "$gm" -p "Lily and Ben went to the park. They saw a big" -n 48 --temp 0 --no-display-prompt --backend cuda > "$out/gemma-device.txt" 2>"$out/gemma-device.err" || true
  if cmp -s "$out/gemma-host.txt" "$out/gemma-device.txt"; then echo "gemma3-small: device greedy text = host" | tee -a "$out/summary.txt"
  else echo "gemma3-small: DIFFERENT greedy text on the device (gemma-host.txt, gemma-device.txt)" | tee -a "$out/summary.txt"; status=1; fi
fi
gm="$work/gemma-3-1b-q4_k_m.gguf"
run_step synth-gemma-3-1b "$bin" synth --shape gemma-3-1b --type q4_k_m -o "$gm" --tokenizer-from "$shared/models/tinystories-656k-q8_0.gguf" &&
  run_step bench-gemma-3-1b-q4_k_m "$bin" bench -m "$gm" -p 512 -n 128 -r 3 --backend cuda --json "$out/bench-gemma-3-1b-q4_k_m.json"
exit $status
