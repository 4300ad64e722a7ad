#!/usr/bin/env bash
# The GPU-side run in one command (no .NET needed there): the NativeAOT `tessera` from scripts/gpu-publish.sh, with
# the PTX embedded, runs the op suite on the CUDA backend (against the CPU backend) and whatever of golden/bench the
# binary offers. Results go under $OUT (default ./gpu-out): device.txt, test-ops.txt, and one file per step.
# Exit code: non-zero when a step failed or the CUDA backend could not start.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-./gpu-out}"
bin="${TESSERA_BIN:-artifacts/aot/tessera}"
mkdir -p "$out"
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
  "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  tail -n 5 "$out/$name.txt"
  echo "$name exit code $rc" | tee -a "$out/summary.txt"
  [ $rc = 0 ] || status=1
}

run_step test-ops "$bin" test-ops --backend cuda
# golden and bench run only when this build of tessera has those commands with a --backend option.
for cmd in golden bench; do
  if "$bin" "$cmd" --help 2>/dev/null | grep -q -- "--backend"; then
    run_step "$cmd" "$bin" "$cmd" --backend cuda
  else
    echo "$cmd: no '$cmd --backend' in this tessera build; skipped" | tee -a "$out/summary.txt"
  fi
done
exit $status
