#!/usr/bin/env bash
# bench/add_vs_openssl.sh [SIZE_MIB] - UnixFS import speed against plain SHA-256.
# Side by side in one run on the same file (page cache warm for all):
#   openssl dgst -sha256 FILE          (one core, the hashing floor per core)
#   ipkrun add -n --cid-version=1 FILE (chunk + hash every leaf + build the DAG, no writes)
#   ipkrun add --cid-version=1 FILE    (same, writing every block to a fresh store)
# Prints GB/s for each and the ratios to openssl.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IPKRUN="${IPKRUN:-$ROOT/build/ipkrun}"
MIB="${1:-1024}"
TMP="$(mktemp -d /tmp/ipk-bench.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
F="$TMP/input.bin"
head -c $((MIB * 1048576)) /dev/zero | openssl enc -chacha20 -K "$(printf 'bench' | sha256sum | cut -c1-64)" \
  -iv 00000000000000000000000000000000 > "$F"
cat "$F" > /dev/null
bytes=$((MIB * 1048576))

t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
best() { local b=999999 x; for _ in 1 2 3; do x=$(t "$@"); b=$(echo "if ($x < $b) $x else $b" | bc -l); done; echo "$b"; }

o=$(best openssl dgst -sha256 "$F")
n=$(best "$IPKRUN" add -n -Q --cid-version=1 "$F")
w=$(IPK_HOME="$TMP/home" t "$IPKRUN" add -Q --cid-version=1 "$F")
gbs() { echo "scale=3; $bytes / $1 / 1000000000" | bc -l; }
printf '%-40s %8s s %8s GB/s\n' "openssl dgst -sha256" "$o" "$(gbs "$o")"
printf '%-40s %8s s %8s GB/s  (%sx openssl)\n' "ipkrun add -n --cid-version=1" "$n" "$(gbs "$n")" "$(echo "scale=2; $o / $n" | bc -l)"
printf '%-40s %8s s %8s GB/s  (%sx openssl)\n' "ipkrun add --cid-version=1 (store)" "$w" "$(gbs "$w")" "$(echo "scale=2; $o / $w" | bc -l)"
echo "cids: $("$IPKRUN" add -n -Q --cid-version=1 "$F")"
