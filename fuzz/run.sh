#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [HARNESS...] - build the libFuzzer harnesses and run
# each for SECONDS (default 10), after replaying fuzz/regressions/<harness>/.
#   fuzz/run.sh 10              every harness 10 s (what scripts/dev.sh test runs)
#   fuzz/run.sh 3600 car        one harness for an hour
#   fuzz/run.sh 0               build and replay the regressions only
# Build dir: $IPK_FUZZ_BUILD_DIR (default <repo>/build-fuzz), configured with
# CC=clang -DIPK_FUZZ=ON. Seeds come from the fixtures at run time
# (${IPK_FIXTURES:-<repo>/../shared/fixtures}, never copied into the repo)
# into <build>/seeds/<harness>; inputs the fuzzer finds accumulate in
# <build>/corpus/<harness> across runs; crashes, leaks and timeouts land in
# <build>/artifacts/<harness>/ and make the script fail. Extra libFuzzer
# flags: FUZZ_FLAGS="-jobs=2 -workers=2" fuzz/run.sh 3600 car.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${IPK_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
FIX="${IPK_FIXTURES:-$ROOT/../shared/fixtures}"
SECS="${1:-10}"; shift || true
JOBS="$(nproc 2>/dev/null || echo 2)"
log() { printf 'fuzz: %s\n' "$*" >&2; }

command -v clang >/dev/null || { log "clang missing (apt-get install clang libclang-rt-14-dev)"; exit 2; }
[ -d "$FIX" ] || { log "fixtures not found at $FIX (set IPK_FIXTURES)"; exit 2; }

CC=clang cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIPK_FUZZ=ON \
  -DIPK_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$JOBS" >&2

all=()
for src in "$ROOT"/fuzz/fuzz_*.c; do n="$(basename "$src" .c)"; all+=("${n#fuzz_}"); done
if [ $# -gt 0 ]; then want=("$@"); else want=("${all[@]}"); fi

rm -rf "$BUILD/seeds"
log "seeds: $(python3 "$ROOT/fuzz/seeds.py" "$FIX" "$BUILD/seeds")"

# Per-harness libFuzzer flags: inputs bigger than this are cut when loaded
# (the big go-car samples); the hashing harnesses are slow per byte.
flags_for() {
  case "$1" in
    car|unixfs) echo "-max_len=65536" ;;
    multibase) echo "-max_len=1024" ;;
    *) echo "-max_len=16384" ;;
  esac
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fail=0
summary=()
for h in "${want[@]}"; do
  bin="$BUILD/fuzz/fuzz_$h"
  [ -x "$bin" ] || { log "no harness '$h' (have: ${all[*]})"; exit 2; }
  art="$BUILD/artifacts/$h/"; corpus="$BUILD/corpus/$h"; seeddir="$BUILD/seeds/$h"
  mkdir -p "$art" "$corpus" "$seeddir"
  reg="$ROOT/fuzz/regressions/$h"
  if compgen -G "$reg/*" >/dev/null; then
    if ! "$bin" -artifact_prefix="$art" "$reg"/* >"$BUILD/artifacts/$h.replay.log" 2>&1; then
      log "$h: a regression input fails again (log: $BUILD/artifacts/$h.replay.log)"
      tail -30 "$BUILD/artifacts/$h.replay.log" >&2
      fail=1; summary+=("$h: REGRESSION"); continue
    fi
  fi
  [ "$SECS" -gt 0 ] || { summary+=("$h: regressions ok"); continue; }
  logf="$BUILD/artifacts/$h.log"
  # shellcheck disable=SC2046,SC2086
  if "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$art" $(flags_for "$h") ${FUZZ_FLAGS:-} "$corpus" "$seeddir" \
       >"$logf" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$logf" | tail -1)
    rate=$(( ${runs:-0} / ( ${secs:-1} > 0 ? ${secs:-1} : 1 ) ))
    summary+=("$(printf '%-12s %9s runs %7s exec/s %5s corpus' "$h" "${runs:-?}" "$rate" \
      "$(ls "$corpus" | wc -l)")")
  else
    log "$h: FAILED (log: $logf; input saved in $art)"
    grep -E 'ERROR|invariant failed|runtime error|SUMMARY|Test unit written' "$logf" | head -20 >&2
    fail=1; summary+=("$h: FAILED, see $logf")
  fi
done
printf 'fuzz: %s\n' "${summary[@]}" >&2
exit "$fail"
