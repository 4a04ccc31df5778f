#!/usr/bin/env bash
# bench/fedavg.sh [K] [N] [REPS] - FedAvg of K clients x N values (default
# 10 x 25M), F32 and F16 inputs, side by side in one run:
#   ipk       ipk_agg_wmean through a small C driver (bench/fedavg_bench.c,
#             linked against build/libipk.a), output in the input dtype,
#             correctly rounded; IPK_THREADS / IPK_SIMD apply
#   read      a multi-threaded plain read of the same client bytes (the
#             memory read roof), in the same run as ipk
#   numpy     Flower's aggregate() formula (bench/fedavg.py)
#   torch     PyTorch in-place accumulation, default threads (python3-torch)
# Best of REPS runs each (the machine is shared). Prints seconds, GB/s of
# client bytes read and the ratios (targets: >= 10x numpy, >= 2x torch,
# >= 0.7x read). Not part of CI; needs Debian python3-numpy python3-torch.
# Measured 2026-12-08 (2-vCPU AMD EPYC Zen 5 VM, shared, load ~1.2; numpy
# 1.24.2, torch 1.13.1 with its default 1 thread), best of 9:
#   F32: ipk 23.7 ms (42 GB/s), read 22.1 ms, numpy 323 ms, torch 58.9 ms:
#        13.6x numpy, 2.5x torch, 0.93x read
#   F16: ipk 11.1 ms (45 GB/s), read 11.0 ms, numpy 694 ms, torch 613 ms:
#        62.6x numpy, 55.2x torch, 0.99x read
# (IPK_SIMD=avx2: F32 35.7 ms, F16 14.4 ms; scalar: 423 / 464 ms.)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${IPK_BUILD_DIR:-$ROOT/build}"
K="${1:-10}" N="${2:-25000000}" REPS="${3:-7}"
PY=/usr/bin/python3
TMP="$(mktemp -d /tmp/ipk-fedavg.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
[ -f "$BUILD/libipk.a" ] || { echo "no $BUILD/libipk.a: build first (cmake --build build)" >&2; exit 1; }
# shellcheck disable=SC2046
cc -O2 -std=c11 -D_GNU_SOURCE -I"$ROOT/core/include" "$ROOT/bench/fedavg_bench.c" "$BUILD/libipk.a" \
  $(pkg-config --libs libuv libcurl sqlite3 libzstd libcrypto libsodium zlib openblas) -lpthread -lm \
  -o "$TMP/fedavg_bench"
$PY -c 'import numpy, torch' 2>/dev/null || {
  echo "needs python3-numpy and python3-torch: DEBIAN_FRONTEND=noninteractive apt-get install -y python3-numpy python3-torch" >&2
  exit 1
}
for kind in f32 f16; do
  "$TMP/fedavg_bench" "$kind" "$K" "$N" "$REPS"
  $PY "$ROOT/bench/fedavg.py" "$kind" "$K" "$N" "$REPS"
done > "$TMP/results"
echo "FedAvg of $K clients x $N values, best of $REPS; $(nproc) CPUs; $(uptime | sed 's/.*load/load/')"
awk '
  { t[$1 "," $2] = $3; b[$1 "," $2] = $4; extra[$1 "," $2] = $5 (NF > 5 ? " " $6 : "") }
  END {
    for (d = 1; d <= 2; d++) {
      k = d == 1 ? "f32" : "f16"
      printf "\n%s inputs (%.2f GB read)\n", toupper(k), b["ipk," k] / 1e9
      split("ipk read numpy torch", names, " ")
      for (i = 1; i <= 4; i++) {
        n = names[i]
        printf "  %-6s %9.4f s %8.2f GB/s   (%s)\n", n, t[n "," k], b[n "," k] / t[n "," k] / 1e9, extra[n "," k]
      }
      printf "  ipk vs numpy %.1fx (target >= 10), vs torch %.1fx (target >= 2), vs read %.2fx (target >= 0.7)\n",
        t["numpy," k] / t["ipk," k], t["torch," k] / t["ipk," k], t["read," k] / t["ipk," k]
    }
  }' "$TMP/results"
