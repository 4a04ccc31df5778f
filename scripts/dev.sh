#!/usr/bin/env bash
# scripts/dev.sh - one entry point for a fresh Debian 12 machine.
#   scripts/dev.sh main [ipkrun run options...]  install what is missing, build, run the main job
#   scripts/dev.sh test                          install what is missing, build, run every test
#   scripts/dev.sh build                         install what is missing and build
# Installs Debian packages with apt-get (sudo only when not root). Nothing is
# downloaded from anywhere else.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${IPK_BUILD_DIR:-$ROOT/build}"
JOBS="$(nproc 2>/dev/null || echo 2)"

PKGS_PRODUCT=(build-essential cmake pkg-config luajit libluajit-5.1-dev lua-cjson libuv1-dev
  libcurl4-openssl-dev libsqlite3-dev libzstd-dev libssl-dev libopenblas-dev libsodium-dev
  libedit-dev zlib1g-dev dataset-fashion-mnist)
PKGS_TEST=(libcmocka-dev lua-busted lua-check openssl golang-go)

log() { printf 'dev.sh: %s\n' "$*" >&2; }

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

build() {
  local dir="$1"; shift
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >&2
  cmake --build "$dir" -j "$JOBS" >&2
}

cmd="${1:-}"; shift || true
case "$cmd" in
  main)
    install_missing "${PKGS_PRODUCT[@]}"
    build "$BUILD"
    exec "$BUILD/ipkrun" run "$ROOT/recipes/fashion_mnist_fedavg.lua" "$@"
    ;;
  build)
    install_missing "${PKGS_PRODUCT[@]}"
    build "$BUILD"
    ;;
  test)
    install_missing "${PKGS_PRODUCT[@]}" "${PKGS_TEST[@]}"
    build "$BUILD"
    log "lint: luacheck"
    (cd "$ROOT" && luacheck -q bindings/lua scripts spec recipes examples)
    log "tests: ctest (C unit tests, Lua specs, conformance, end to end)"
    (cd "$BUILD" && ctest --output-on-failure -j "$JOBS")
    log "tests: C unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    build "$BUILD-asan" -DIPK_SANITIZE=ON
    (cd "$BUILD-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --output-on-failure -j "$JOBS" -L c)
    ;;
  *)
    echo "usage: scripts/dev.sh main [--param k=v ...] [--json] | test | build" >&2
    exit 2
    ;;
esac
