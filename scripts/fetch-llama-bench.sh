#!/usr/bin/env bash
# A llama.cpp baseline on this very machine, for docs/PERF.md: llama-bench from Debian's llama.cpp package, run from
# a private folder (.cache/llama.cpp) with the libraries it was built against, so nothing is installed system-wide.
#
# Why Debian's binaries: this workplace reaches Debian's archive but not GitHub, and only the binary packages of
# unstable are served (not the sources). They need glibc 2.43, newer than bookworm's, so the wrapper starts them
# with their own dynamic loader and library path. ggml picks its CPU variant (icelake, zen4, ...) at run time from
# the libggml-cpu-*.so files beside the loader.
#
# Usage: scripts/fetch-llama-bench.sh        -> .cache/llama.cpp/llama-bench, llama-server, llama-completion (wrapper
#                                               scripts); prints llama-bench's version
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/.cache/llama.cpp"
mirror="${DEBIAN_MIRROR:-$(scripts/apt-mirror.sh)}"   # the machine's own Debian mirror (apt configuration)
mkdir -p "$dest/debs" "$dest/root"

index="$dest/Packages"
if [ ! -s "$index" ]; then
  curl -fsSL "$mirror/dists/sid/main/binary-amd64/Packages.xz" | xz -dc > "$index"
fi

# Path in the archive of a package's newest build in the index.
filename() { awk -v P="$1" '$1 == "Package:" { q = ($2 == P) } q && $1 == "Filename:" { print $2; exit }' "$index"; }

for p in llama.cpp-tools libllama0 libggml0 libc6 libstdc++6 libgcc-s1 libgomp1 libssl3t64 libzstd1; do
  f=$(filename "$p")
  [ -n "$f" ] || { echo "fetch-llama-bench: package $p is not in Debian unstable's index" >&2; exit 1; }
  deb="$dest/debs/$(basename "$f")"
  [ -s "$deb" ] || curl -fsSL -o "$deb" "$mirror/$f"
  dpkg-deb -x "$deb" "$dest/root"
done

lib="$dest/root/usr/lib/x86_64-linux-gnu"
# ggml looks for its CPU backends next to the executable, which, started through the loader, is the loader itself.
cp "$lib"/ggml/backends0/libggml-cpu-*.so "$lib"/
# One wrapper per tool: llama-bench for speed, llama-server and llama-completion for references (arch-golden.sh).
for tool in llama-bench llama-server llama-completion; do
  cat > "$dest/$tool" <<EOF
#!/bin/sh
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib:$lib/llama" "$dest/root/usr/bin/$tool" "\$@"
EOF
  chmod +x "$dest/$tool"
done
echo "llama-bench: $dest/llama-bench ($(awk '$1 == "Package:" { q = ($2 == "llama.cpp-tools") } q && $1 == "Version:" { print $2; exit }' "$index"))"
