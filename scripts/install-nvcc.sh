#!/usr/bin/env bash
# Installs Debian's nvidia-cuda-toolkit (CUDA 11.8 on bookworm, from the non-free component) so that the kernels
# can be compiled to PTX. Needs root and apt-get. The toolkit refuses g++ 12, so clang-14 is installed as nvcc's
# host compiler (build.sh passes -ccbin clang++-14 when it is there).
set -euo pipefail
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-nvcc.sh: needs root and apt-get" >&2; exit 1
fi
. /etc/os-release
list=/etc/apt/sources.list.d/tessera-nonfree.sources
if [ ! -f "$list" ]; then
  mirror=$(bash "$(dirname "$0")/apt-mirror.sh")   # the machine's own Debian mirror, with contrib and non-free added
  cat > "$list" <<SRC
Types: deb
URIs: ${mirror}
Suites: ${VERSION_CODENAME}
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit clang-14 >/dev/null
nvcc --version | tail -n 2
