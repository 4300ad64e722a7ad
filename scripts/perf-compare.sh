#!/usr/bin/env bash
# Tessera against llama.cpp on this machine, in one run: for each shape and type, synthesize the random-weight file
# (once), then run llama-bench and `tessera bench` on it back to back, twice each in alternation so that a
# neighbour's load hits both alike. Prints the markdown table of docs/PERF.md and keeps the raw JSON.
#
# Usage: scripts/perf-compare.sh [OUTDIR]       (default /tmp/tessera-perf; model files go there, never into the repo)
#   SHAPES="stories110m llama-3.2-1b"  TYPES="f16 q8_0 q4_k_m"  THREADS=2  REPS=3
# Needs: artifacts/tessera (./build.sh) and .cache/llama.cpp/llama-bench (scripts/fetch-llama-bench.sh), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/tessera-perf}"
shapes="${SHAPES:-stories110m llama-3.2-1b}"
types="${TYPES:-f16 q8_0 q4_k_m}"
threads="${THREADS:-2}"
reps="${REPS:-3}"
tessera=artifacts/tessera
llama=.cache/llama.cpp/llama-bench
[ -x "$tessera" ] || { echo "perf-compare: build first (./build.sh)" >&2; exit 1; }
[ -x "$llama" ] || scripts/fetch-llama-bench.sh
mkdir -p "$out"

# The issues' tests: pp64/tg32 at the 0.6B-2B shapes, pp128/tg64 at stories110m.
tests_for() { case "$1" in llama-3.2-1b|qwen3-0.6b|gemma-3-1b|gemma-2-2b) echo "64 32" ;; *) echo "128 64" ;; esac; }

for shape in $shapes; do
  for type in $types; do
    f="$out/$shape-$type.gguf"
    [ -s "$f" ] || "$tessera" synth --shape "$shape" --type "$type" -o "$f" >/dev/null
    read -r pp tg < <(tests_for "$shape")
    for round in 1 2; do
      "$llama" -m "$f" -p "$pp" -n "$tg" -t "$threads" -r "$reps" -o json 2>/dev/null > "$out/$shape-$type.llama.$round.json"
      "$tessera" bench -m "$f" -p "$pp" -n "$tg" -t "$threads" -r "$reps" --json "$out/$shape-$type.tessera.$round.json" >/dev/null 2>&1
    done
  done
done

python3 - "$out" "$shapes" "$types" <<'EOF'
import json, sys, statistics, os
out, shapes, types = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def llama(path):
    r = {}
    for t in json.load(open(path)):
        name = f"pp{t['n_prompt']}" if t['n_gen'] == 0 else f"tg{t['n_gen']}"
        r[name] = t['avg_ts']
    return r
def tessera(path):
    return {t['test']: t for t in json.load(open(path))}
print("| shape | type | test | llama.cpp t/s | Tessera t/s | ratio | Tessera decode bandwidth |")
print("|---|---|---|---:|---:|---:|---:|")
for s in shapes:
    for ty in types:
        L = [llama(f"{out}/{s}-{ty}.llama.{i}.json") for i in (1, 2)]
        T = [tessera(f"{out}/{s}-{ty}.tessera.{i}.json") for i in (1, 2)]
        for name in T[0]:
            lv = max(l.get(name, 0) for l in L)              # best of the two rounds, for both engines alike
            tv = max(t[name]['tokens_per_second'] for t in T)
            bw = ""
            best = max(T, key=lambda t: t[name]['tokens_per_second'])[name]
            if best.get('bandwidth_fraction') is not None:
                # Against the better of the two rounds' bandwidth measurements: one taken while a neighbour was busy
                # reads low (12.6 against 22-25 GB/s once), which would flatter the fraction.
                roof = max(t[name]['machine_bandwidth_gbps'] for t in T)
                bw = f"{best['bandwidth_gbps']:.1f} GB/s = {100 * best['bandwidth_gbps'] / roof:.0f}% of {roof:.1f}"
            print(f"| {s} | {ty.upper()} | {name} | {lv:.1f} | {tv:.1f} | {tv / lv:.2f} | {bw} |")
EOF
