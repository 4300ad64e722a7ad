#!/usr/bin/env bash
# Builds what the GPU machine needs (it has no .NET): the PTX (./build.sh kernels), then `tessera` published with
# NativeAOT for linux-x64 into artifacts/aot, the PTX embedded in it. Then, on the GPU machine, run scripts/gpu-run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
./build.sh kernels
ls artifacts/kernels/ptx/*.ptx >/dev/null 2>&1 || { echo "gpu-publish.sh: no PTX was built (no nvcc?)" >&2; exit 1; }
dotnet publish cli/Tessera.Cli.csproj -c Release -r linux-x64 -p:PublishAot=true -o artifacts/aot --nologo -v quiet
rm -f artifacts/aot/*.pdb artifacts/aot/*.xml artifacts/aot/*.dbg
echo "published: artifacts/aot/tessera ($(du -h artifacts/aot/tessera | cut -f1)) with $(ls artifacts/kernels/ptx/*.ptx | wc -l) PTX images"
