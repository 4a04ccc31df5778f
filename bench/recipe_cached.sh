#!/usr/bin/env bash
# bench/recipe_cached.sh [STEPS] - a fully cached re-run of a STEPS-step
# recipe (default 50), total wall time of the whole `ipkrun run` process,
# side by side with the same pipeline's no-op re-run in Snakemake (Debian's
# `snakemake`, when installed).
# The pipeline: a chain of STEPS steps, step i computes from step i-1 and
# a parameter (ipk: custom steps memoized by CID; Snakemake: one rule per
# step writing a small file from its input). First run populates the cache
# (not timed); then the best of 5 re-runs is reported, with the ratio.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IPKRUN="${IPKRUN:-$ROOT/build/ipkrun}"
N="${1:-50}"
TMP="$(mktemp -d /tmp/ipk-bench.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
export IPK_HOME="$TMP/home"

# The ipk recipe.
{
  echo 'local ipk = require "ipk"'
  echo 'local steps = {}'
  echo "steps.s1 = ipk.step { k = ipk.param \"k\", run = function(_, _, a) return { v = a.k } end }"
  echo "for i = 2, $N do"
  echo '  steps["s" .. i] = ipk.step { inputs = { prev = "s" .. (i - 1) }, i = i,'
  echo '    run = function(_, inp, a) return { v = (inp.prev.v * 31 + a.i) % 1000003 } end }'
  echo 'end'
  echo 'return ipk.recipe { name = "bench-chain", params = { k = 7 }, steps = steps }'
} > "$TMP/chain.lua"

# The same pipeline for Snakemake.
{
  echo 'rule all:'
  echo "    input: \"out/s$N.txt\""
  echo 'rule s1:'
  echo '    output: "out/s1.txt"'
  echo '    shell: "echo 7 > {output}"'
  for i in $(seq 2 "$N"); do
    echo "rule s$i:"
    echo "    input: \"out/s$((i - 1)).txt\""
    echo "    output: \"out/s$i.txt\""
    echo "    shell: \"echo \$(( (\$(cat {input}) * 31 + $i) % 1000003 )) > {output}\""
  done
} > "$TMP/Snakefile"

t() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
best() { local b=999999 x; for _ in 1 2 3 4 5; do x=$(t "$@"); b=$(echo "if ($x < $b) $x else $b" | bc -l); done; echo "$b"; }

"$IPKRUN" run "$TMP/chain.lua" --json > "$TMP/first.json" 2> /dev/null
"$IPKRUN" run "$TMP/chain.lua" --json > "$TMP/second.json" 2> /dev/null
cached=$(grep -o '"status":"cached"' "$TMP/second.json" | wc -l)
[ "$cached" -eq "$N" ] || { echo "bench: expected $N cached steps, got $cached" >&2; exit 1; }
ipk=$(best "$IPKRUN" run "$TMP/chain.lua" --quiet)
engine=$(grep -o '"duration":[0-9.e-]*' "$TMP/second.json" | tail -1 | cut -d: -f2)
printf '%-52s %8.4f s\n' "ipkrun run ($N steps, all cached): process" "$ipk"
printf '%-52s %8.4f s\n' "  of which the engine (plan + restore + record)" "$engine"
if command -v snakemake > /dev/null; then
  (cd "$TMP" && snakemake -j1 --quiet > /dev/null 2>&1)
  [ -s "$TMP/out/s$N.txt" ] || { echo "bench: snakemake did not produce out/s$N.txt" >&2; exit 1; }
  sm=$(cd "$TMP" && best snakemake -j1 --quiet)
  printf '%-52s %8.4f s\n' "snakemake -j1 ($N rules, nothing to do)" "$sm"
  printf '%-52s %8.1fx\n' "ratio snakemake / ipkrun" "$(echo "$sm / $ipk" | bc -l)"
else
  echo "snakemake not installed (apt-get install snakemake): no side-by-side number"
fi
