#!/usr/bin/env bash
# bench/dataset_stats.sh [COLUMNS] [ROWS] - `ipkrun dataset add` of a wide
# CSV (COLUMNS columns, default 1000000, 3 rows), a long CSV (ROWS rows,
# default 600000, 5 columns with NA and empty fields) and the long one as
# JSON Lines: wall time, CPU seconds and max RSS of the whole process
# (/usr/bin/time -v), next to the CPU time of the C statistics alone (ipk_table_stats_file
# + ipk_table_stats_json, through LuaJIT's FFI). Statistics are computed
# once, in C, and recorded as the JSON text C writes (issue 8 item 7: the
# wide file took 27 s and 2.5 GB when Lua rebuilt them per column).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IPKRUN="${IPKRUN:-$ROOT/build/ipkrun}"
COLS="${1:-1000000}"
ROWS="${2:-600000}"
TMP="$(mktemp -d /tmp/ipk-bench.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
export IPK_HOME="$TMP/home"

/usr/bin/python3 - "$TMP" "$COLS" "$ROWS" <<'PY'
import json, random, sys
d, cols, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(1)
with open(d + "/wide.csv", "w") as f:
    f.write(",".join("c%d" % i for i in range(cols)) + "\n")
    for _ in range(3):
        f.write(",".join(str(random.randint(0, 1000)) if i % 3 else "%.3f" % random.random() for i in range(cols)) + "\n")
with open(d + "/long.csv", "w") as f, open(d + "/long.jsonl", "w") as g:
    f.write("id,x,y,label,name\n")
    for r in range(rows):
        x, y, lab = random.gauss(0, 1), random.randint(-50, 50), random.choice("abc")
        name = "" if r % 17 == 0 else "NA" if r % 13 == 0 else "n%d" % r
        f.write("%d,%.4f,%d,%s,%s\n" % (r, x, y, lab, name))
        g.write(json.dumps({"id": r, "x": x, "y": y, "label": lab, "name": name or None}) + "\n")
PY

measure() { # name file
  local t="$TMP/time.$1"
  /usr/bin/time -v "$IPKRUN" dataset add "$2" --name "$1" >/dev/null 2>"$t"
  awk -v n="$1" -v sz="$(stat -c %s "$2")" '
    /Elapsed/ {w=$NF} /User time/ {u=$NF} /System time/ {s=$NF} /Maximum resident/ {m=$NF}
    END {printf "%-12s %8.1f MB  dataset add: wall %s  cpu %.2f s  max RSS %.0f MB\n", n, sz/1e6, w, u+s, m/1024}' "$t"
}
measure wide "$TMP/wide.csv"
measure long "$TMP/long.csv"
measure long-jsonl "$TMP/long.jsonl"

IPK_BUILD_DIR="$ROOT/build" luajit -e '
package.path = "'"$ROOT"'/bindings/lua/?.lua;'"$ROOT"'/scripts/?.lua;'"$ROOT"'/scripts/?/init.lua;" .. package.path
local core = require "ipk.core"
local ffi, lib = core.ffi, core.lib
local now = os.clock -- CPU seconds of this single-threaded process
for _, f in ipairs { "wide.csv", "long.csv" } do
  local s, j, eb = ffi.new("ipk_table_stats_t"), ffi.new("ipk_table_json_t"), core.errbuf()
  local t0 = now()
  assert(lib.ipk_table_stats_file("'"$TMP"'/" .. f, 0, s, eb) == 0)
  local t1 = now()
  assert(lib.ipk_table_stats_json(s, j, eb) == 0)
  local t2 = now()
  print(("%-12s C statistics %.2f s CPU, their JSON %.2f s CPU (%d bytes)"):format(f, t1 - t0, t2 - t1, tonumber(j.len)))
  lib.ipk_table_json_free(j)
  lib.ipk_table_stats_free(s)
end'
echo "load average: $(cut -d" " -f1-3 /proc/loadavg)"
