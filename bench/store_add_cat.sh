#!/usr/bin/env bash
# bench/store_add_cat.sh - the embedded store's write and read paths side by
# side in one run, on one file held in the page cache:
#   plain `cat F | cat` and `cat F > /dev/null`     (the bar for reading)
#   `ipkrun add -n F`                               (hash only: the bar for adding)
#   `ipkrun add F` into a fresh store               (pack append, fdatasync, pin)
#   `ipkrun cat CID | cat` and `> /dev/null`        (every block re-hashed)
#   the same add and cat with `repo compression zstd` (level 3 at rest;
#   ZSTD=zstd:1 picks another level)
#   `dd conv=fdatasync` of the same size            (what the disk can sync)
#   `openssl dgst -sha256 F`                        (the verify floor, one core)
# Each row is the best of RUNS runs (default 3; the machine is shared) and
# every cat output is compared with the file. Prints seconds, MiB/s and the
# ratios the store is held to: add/add -n (goal >= 0.5) and ipk cat/plain
# cat (goal >= 0.9); for zstd also stored/block bytes from `repo stat`.
#
# usage: bench/store_add_cat.sh [MiB (default 1024) | FILE] [BUILD_DIR (default build)]
#   MiB: a file of that many random (incompressible) MiB is made in /tmp;
#   FILE: an existing file (a model, a dataset) is used as it is.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARG="${1:-1024}"
BUILD="$(cd "${2:-$ROOT/build}" && pwd)"
IPK="$BUILD/ipkrun"
RUNS="${RUNS:-3}"
ZSTD="${ZSTD:-zstd}"   # the compression setting of the compressed store (zstd = level 3, zstd:N)
[ -x "$IPK" ] || { echo "no $IPK (build first)" >&2; exit 1; }

work=$(mktemp -d /tmp/ipk-bench-store.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

if [ -f "$ARG" ]; then
  file="$ARG"
  label="$(basename "$ARG")"
else
  file="$work/random.bin"
  head -c $((ARG * 1048576)) /dev/urandom > "$file"
  label="$ARG MiB random"
fi
bytes=$(stat -c %s "$file")
cat "$file" > /dev/null   # into the page cache

now() { date +%s.%N; }
# timeit NAME CMD...: run CMD RUNS times (SETUP before each when set); keep
# the fastest wall time and the CPU seconds (user + sys, all processes of
# the command) of that run. On a busy machine wall time follows CPU time.
declare -A best cpu
timeit() {
  local name="$1"; shift
  local b="" c="" t0 t1 d u
  for _ in $(seq 1 "$RUNS"); do
    if [ -n "${SETUP:-}" ]; then eval "$SETUP"; fi
    t0=$(now); /usr/bin/time -f "%U %S" -o "$work/cpu" "$@"; t1=$(now)
    d=$(echo "$t1 - $t0" | bc -l)
    u=$(awk '{ print $1 + $2 }' "$work/cpu")
    if [ -z "$b" ] || [ "$(echo "$d < $b" | bc -l)" = 1 ]; then b=$d; c=$u; fi
  done
  best[$name]=$b
  cpu[$name]=$c
}

export IPK_HOME="$work/home"
fresh_store() { rm -rf "$IPK_HOME" "$work/zhome"; }
fresh_zstore() {
  rm -rf "$work/zhome"
  IPK_HOME="$work/zhome" "$IPK" repo compression "$ZSTD" > /dev/null
}

timeit plain_pipe sh -c "cat '$file' | cat > /dev/null"
timeit plain_null sh -c "cat '$file' > /dev/null"
timeit add_n sh -c "'$IPK' add -n -Q '$file' > '$work/cid.n'"
SETUP=fresh_store timeit add sh -c "'$IPK' add -Q '$file' > '$work/cid'"
cid=$(cat "$work/cid")
[ "$cid" = "$(cat "$work/cid.n")" ] || { echo "add and add -n disagree" >&2; exit 1; }
"$IPK" cat "$cid" | cmp -s - "$file" || { echo "ipkrun cat returned different bytes" >&2; exit 1; }
timeit cat_pipe sh -c "'$IPK' cat '$cid' | cat > /dev/null"
timeit cat_null sh -c "'$IPK' cat '$cid' > /dev/null"
SETUP=fresh_zstore timeit zadd sh -c "IPK_HOME='$work/zhome' '$IPK' add -Q '$file' > /dev/null"
IPK_HOME="$work/zhome" "$IPK" cat "$cid" | cmp -s - "$file" || { echo "ipkrun cat (zstd) returned different bytes" >&2; exit 1; }
timeit zcat_pipe sh -c "IPK_HOME='$work/zhome' '$IPK' cat '$cid' | cat > /dev/null"
zstat=$(IPK_HOME="$work/zhome" "$IPK" repo stat --json)
zbytes=$(echo "$zstat" | sed -n 's/.*"bytes":\([0-9]*\).*/\1/p')
zstored=$(echo "$zstat" | sed -n 's/.*"stored_bytes":\([0-9]*\).*/\1/p')
IPK_HOME="$work/zhome" "$IPK" repo verify > /dev/null
# The verify floor: SHA-256 of the file on one core (OpenSSL, the library
# the store hashes with). Reading with every block re-hashed cannot take
# less CPU than this; on N cores its wall time is at least this / N.
timeit sha sh -c "openssl dgst -sha256 -r '$file' > /dev/null"
SETUP="rm -f '$work/dd.out'" timeit dd dd if="$file" of="$work/dd.out" bs=1M conv=fdatasync status=none
rm -f "$work/dd.out"

cpus=""
for k in plain_pipe plain_null add_n add cat_pipe cat_null zadd zcat_pipe dd sha; do cpus="$cpus ${cpu[$k]}"; done
awk -v B="$bytes" -v label="$label" -v runs="$RUNS" -v zb="$zbytes" -v zs="$zstored" -v cpus="$cpus" \
    -v load="$(cut -d' ' -f1 /proc/loadavg)" -v zs_spec="$ZSTD" \
    -v pp="${best[plain_pipe]}" -v pn="${best[plain_null]}" -v an="${best[add_n]}" -v a="${best[add]}" \
    -v cp="${best[cat_pipe]}" -v cn="${best[cat_null]}" -v za="${best[zadd]}" -v zc="${best[zcat_pipe]}" \
    -v dd="${best[dd]}" -v sha="${best[sha]}" -v ncpu="$(nproc)" 'BEGIN {
  split(cpus, C, " ")
  m = B / 1048576
  printf "file: %s (%.1f MiB), page-cached; best of %d runs; %d cores, load average %s\n", label, m, runs, '"$(nproc)"', load
  printf "%-50s %9s %13s %9s\n", "", "wall", "throughput", "CPU"
  row("cat F | cat                 (plain, pipe)", pp, C[1])
  row("cat F > /dev/null           (plain)", pn, C[2])
  row("ipkrun add -n F             (hash only)", an, C[3])
  row("ipkrun add F                (store, fdatasync, pin)", a, C[4])
  row("ipkrun cat CID | cat        (verified)", cp, C[5])
  row("ipkrun cat CID > /dev/null  (verified)", cn, C[6])
  row("ipkrun add F                (store, " zs_spec ")", za, C[7])
  row("ipkrun cat CID | cat        (" zs_spec " store)", zc, C[8])
  row("dd conv=fdatasync           (disk sync bound)", dd, C[9])
  row("openssl dgst -sha256 F      (verify floor, 1 core)", sha, C[10])
  printf "ratio add/add -n (throughput): %.2f   (goal >= 0.5; the disk allows at most %.2f)\n", an / a, an / dd
  printf "ratio ipk cat/plain cat (pipe): %.2f   (/dev/null: %.2f; goal >= 0.9)\n", pp / cp, pn / cn
  printf "verify bound: hashing alone needs >= %.2f s on %d cores, so ipk cat/plain cat (pipe) <= %.2f here; ipk cat is %.2fx that bound\n",
         sha / ncpu, ncpu, (pp * ncpu / sha > 1 ? 1 : pp * ncpu / sha), (sha / ncpu) / cp
  printf "%s: stored/block bytes %.3f (%d of %d); add %.2fx, cat %.2fx the plain store'"'"'s throughput\n",
         zs_spec, zs / zb, zs, zb, a / za, cp / zc
}
function row(name, t, c) { printf "%-50s %7.2f s %7.1f MiB/s %7.2f s\n", name, t, (B / 1048576) / t, c }'
