#!/usr/bin/env bash
# Prints the Debian archive this machine's apt is configured with (the URI of its main suite, not the security one),
# so that scripts fetch from the mirror the machine uses and no host name is written into the repository.
# Reads deb822 files (/etc/apt/sources.list.d/*.sources: "URIs:" with "Suites:") and one-line lists
# (/etc/apt/sources.list, *.list: "deb URI SUITE ..."). Exits 1 when none is configured.
set -euo pipefail
. /etc/os-release 2>/dev/null || true
codename="${VERSION_CODENAME:-}"
pick() {  # URI SUITE...: prints URI when a suite is the release's own (or, lacking a codename, any non-security one)
  local uri=$1; shift
  for s in "$@"; do
    if { [ -n "$codename" ] && [ "$s" = "$codename" ]; } || { [ -z "$codename" ] && [[ "$s" != *security* ]]; }; then
      echo "${uri%/}"; exit 0
    fi
  done
}
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  # One stanza per blank-line-separated block: its URIs and Suites.
  while IFS=$'\t' read -r uris suites; do
    for u in $uris; do pick "$u" $suites; done
  done < <(awk 'BEGIN { RS = ""; FS = "\n" } { u = ""; s = ""; for (i = 1; i <= NF; i++) { if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); u = $i } if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); s = $i } } if (u != "") print u "\t" s }' "$f")
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  while read -r type rest; do
    [ "$type" = deb ] || continue
    set -- $rest
    [[ "$1" == \[* ]] && shift  # options such as [signed-by=...]
    uri=$1; shift
    pick "$uri" "$@"
  done < "$f"
done
echo "apt-mirror.sh: no Debian archive in this machine's apt configuration" >&2
exit 1
