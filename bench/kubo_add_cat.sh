#!/usr/bin/env bash
# bench/kubo_add_cat.sh - adding and cat-ing a file through a real node's
# RPC API: ipk (`ipkrun --api URL add`: local import + CAR + dag/import;
# `ipkrun --api URL cat`: dag/export as a CAR, every block verified into the
# local cache, then a verified local cat) side by side with
# curl (`curl -F file=@F URL/api/v0/add`, `curl URL/api/v0/cat`) against the
# same node in one run. Prints seconds, MiB/s and the ipk/curl ratio.
#
# usage: bench/kubo_add_cat.sh [MiB (default 256)] [BUILD_DIR (default build)]
# Needs the test node installed (scripts/dev.sh test does it, or the specs
# do on first use) in BUILD_DIR/ipfs-node. Loopback only; the node is
# stopped by PID at the end. Two different random files of the same size are
# added (ipk's first, curl's second) so that neither finds the other's blocks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIB="${1:-256}"
BUILD="$(cd "${2:-$ROOT/build}" && pwd)"
NODE_DIR="$BUILD/ipfs-node"
[ -f "$NODE_DIR/node_modules/ipfs-core/package.json" ] || { echo "no test node in $NODE_DIR (run scripts/dev.sh test)" >&2; exit 1; }
cp "$ROOT/spec/support/ipfs-node/node.mjs" "$NODE_DIR/node.mjs"

work=$(mktemp -d /tmp/ipk-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

(cd "$NODE_DIR" && exec node node.mjs "$work/repo" 0 0 0 </dev/null >"$work/node.log" 2>&1) &
pid=$!
for _ in $(seq 1 300); do grep -q READY "$work/node.log" && break; sleep 0.1; done
api=$(sed -n 's/.*"api":"\([^"]*\)".*/\1/p' "$work/node.log")
[ -n "$api" ] || { cat "$work/node.log" >&2; exit 1; }

head -c $((MIB * 1048576)) /dev/urandom > "$work/a.bin"
head -c $((MIB * 1048576)) /dev/urandom > "$work/b.bin"
export IPK_HOME="$work/home"

now() { date +%s.%N; }
t0=$(now); cid_ipk=$("$BUILD/ipkrun" --api "$api" add -Q "$work/a.bin"); t1=$(now)
cid_curl=$(curl -sS -X POST -F "file=@$work/b.bin;type=application/octet-stream" "$api/api/v0/add?quieter=true" \
  | sed -n 's/.*"Hash":"\([^"]*\)".*/\1/p' | tail -n1); t2=$(now)
"$BUILD/ipkrun" --api "$api" cat "$cid_ipk" > "$work/a.out"; t3=$(now)
curl -sS -X POST "$api/api/v0/cat?arg=$cid_ipk" > "$work/a.curl"; t4=$(now)

cmp -s "$work/a.bin" "$work/a.out" || { echo "ipk cat returned different bytes" >&2; exit 1; }
cmp -s "$work/a.bin" "$work/a.curl" || { echo "curl cat returned different bytes" >&2; exit 1; }
offline=$("$BUILD/ipkrun" add -Q -n "$work/a.bin")
[ "$offline" = "$cid_ipk" ] || { echo "CID through the node $cid_ipk != offline $offline" >&2; exit 1; }

awk -v m="$MIB" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v ci="$cid_ipk" -v cc="$cid_curl" 'BEGIN {
  ia = b - a; ca = c - b; ic = d - c; cc2 = e - d
  printf "file: %d MiB random; node: js-ipfs 0.66 (ipfs-core 0.18) on loopback\n", m
  printf "%-44s %8.2f s %8.1f MiB/s  (%s)\n", "add  ipkrun --api (import + CAR dag/import)", ia, m / ia, ci
  printf "%-44s %8.2f s %8.1f MiB/s  (%s)\n", "add  curl -F /api/v0/add (node imports)", ca, m / ca, cc
  printf "%-44s %8.2f s %8.1f MiB/s\n", "cat  ipkrun --api cat", ic, m / ic
  printf "%-44s %8.2f s %8.1f MiB/s\n", "cat  curl /api/v0/cat", cc2, m / cc2
  printf "ratio add ipk/curl time: %.2f   ratio cat ipk/curl time: %.2f   (< 1 = ipk faster)\n", ia / ca, ic / cc2
}'
