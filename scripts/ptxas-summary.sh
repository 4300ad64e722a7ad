#!/usr/bin/env bash
# Reads `ptxas -v` output (with "== FILE sm_N" headers from the CMake ptxas target) on stdin and prints one line
# per kernel and architecture: registers, shared memory, stack, spills. Exits 1 when any kernel spills.
awk '
  /^== / { file = $2; arch = $3; next }
  /Compiling entry function/ { match($0, /\x27[^\x27]+\x27/); fn = substr($0, RSTART + 1, RLENGTH - 2); next }
  /bytes stack frame/ { stack = $1; spill = $5 + $9; next }
  /Used [0-9]+ registers/ {
    regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
    smem = 0; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
    printf "ptxas %-20s %-5s %-30s %3d regs %6d B smem %4d B stack %4d B spill\n", file, arch, fn, regs, smem, stack, spill
    if (spill > 0) spilled = 1
    next
  }
  /error|warning/ { print; if (/error/) failed = 1 }
  END { if (spilled) { print "ptxas: a kernel spills registers (see above)"; exit 1 } if (failed) exit 1 }
'
