#!/usr/bin/env bash
# Installs the official `openai` npm client (version pinned in tests/Tessera.Tests/Server/openai-client/package.json)
# into .cache/openai-client/ (git-ignored) for the server tests; they report Ignored until this has run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/tests/Tessera.Tests/Server/openai-client"
dest="$root/.cache/openai-client"
mkdir -p "$dest"
if [[ -f "$dest/node_modules/openai/package.json" ]] && cmp -s "$src/package.json" "$dest/package.json"; then
  echo "openai client: already in $dest"; exit 0
fi
cp "$src/package.json" "$dest/package.json"
(cd "$dest" && npm install --silent --no-audit --no-fund --no-package-lock >/dev/null)
echo "openai client: $dest"
