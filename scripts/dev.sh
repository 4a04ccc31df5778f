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
PKGS_TEST=(libcmocka-dev lua-busted lua-check openssl golang-go python3-numpy python3-torch python3-h5py protobuf-compiler chromium imagemagick
  clang libclang-rt-14-dev)

log() { printf 'dev.sh: %s\n' "$*" >&2; }

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Package lists are needed even with nothing to install: test support
  # fetches sample model files with `apt-get download`.
  if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    local S=""; [ "$(id -u)" -ne 0 ] && S="sudo"
    $S apt-get update -q >&2
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# The js-ipfs test node (issue 3's integration specs): npm ci of the pinned
# spec/support/ipfs-node/package-lock.json into $BUILD/ipfs-node, skipped
# when the stamp (sha256 of package.json + lock) already matches; the specs
# do the same lazily (spec/support/ipfs_node.lua). node and npm come from
# Debian (nodejs, npm) when absent.
install_test_node() {
  local src="$ROOT/spec/support/ipfs-node" dir="$BUILD/ipfs-node"
  command -v node >/dev/null || install_missing nodejs
  command -v npm >/dev/null || install_missing npm
  local stamp
  stamp=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ] && [ -f "$dir/node_modules/ipfs-core/package.json" ]; then
    return 0
  fi
  log "npm ci: js-ipfs test node into $dir"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
  echo "$stamp" > "$dir/.stamp"
}

build() {
  local dir="$1"; shift
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >&2
  cmake --build "$dir" -j "$JOBS" >&2
}

# The main job must need only the product's packages (a new user runs
# `scripts/dev.sh main` on a fresh machine). Prove it on this machine, where
# the test-only packages are installed: configure and build with every
# pkg-config file and CMake package directory those packages ship hidden,
# then run the main recipe for a few rounds in a throwaway store.
product_check() {
  local dir="$BUILD-product" tmp pcdir owned d f ignore=""
  tmp="$(mktemp -d)"; pcdir="$tmp/pkgconfig"; mkdir -p "$pcdir"
  owned="$(dpkg -L "${PKGS_TEST[@]}" 2>/dev/null || true)"
  for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' '); do
    for f in "$d"/*.pc; do
      [ -e "$f" ] || continue
      grep -qxF "$f" <<<"$owned" && continue
      [ -e "$pcdir/${f##*/}" ] || ln -s "$f" "$pcdir/"
    done
  done
  for d in $(grep -E '/cmake/[^/]+$' <<<"$owned" | sort -u); do ignore="$ignore;$d"; done
  rm -rf "$dir"
  log "product check: configure and build with the test-only packages hidden"
  PKG_CONFIG_LIBDIR="$pcdir" PKG_CONFIG_PATH="" \
    build "$dir" -DCMAKE_IGNORE_PATH="${ignore#;}"
  if grep -q '^CMOCKA_' "$dir/CMakeCache.txt"; then
    log "product check: the product build looked for a test-only package:"
    grep '^CMOCKA_' "$dir/CMakeCache.txt" >&2
    return 1
  fi
  log "product check: main recipe, 3 rounds, fresh store"
  IPK_HOME="$tmp/home" "$dir/ipkrun" run "$ROOT/recipes/fashion_mnist_fedavg.lua" \
    --param rounds=3 --param version=0.0.1-check --json > "$tmp/main.json"
  grep -q '"test_accuracy"' "$tmp/main.json" || { log "product check: no test_accuracy in:"; cat "$tmp/main.json" >&2; return 1; }
  log "product check: ok (final $(grep -o '"test_accuracy":[0-9.]*' "$tmp/main.json" | tail -n 1))"
  rm -rf "$tmp" "$dir"
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
    product_check
    build "$BUILD" -DIPK_TESTS=ON
    log "lint: luacheck"
    (cd "$ROOT" && luacheck -q bindings/lua scripts spec recipes examples)
    install_test_node
    log "tests: ctest (C unit tests, Lua specs, conformance, end to end)"
    (cd "$BUILD" && ctest --output-on-failure -j "$JOBS")
    log "tests: C unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    build "$BUILD-asan" -DIPK_SANITIZE=ON -DIPK_TESTS=ON
    (cd "$BUILD-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --output-on-failure -j "$JOBS" -L c)
    # The specs too: libasan preloaded into luajit, which then loads the
    # sanitized libipk.so (and runs the sanitized ipkrun). LuaJIT's own
    # allocations are not leaks ASan can judge, so leak checks stay off here.
    log "tests: Lua specs against the sanitized build"
    (cd "$BUILD-asan" && LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
      ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --output-on-failure -j "$JOBS" -L lua)
    # Every libFuzzer harness briefly (fuzz/README.md): the inputs in
    # fuzz/regressions replayed, then IPK_FUZZ_SECONDS (default 6) each.
    log "tests: fuzz harnesses, ${IPK_FUZZ_SECONDS:-6} s each"
    IPK_FUZZ_BUILD_DIR="$BUILD-fuzz" "$ROOT/fuzz/run.sh" "${IPK_FUZZ_SECONDS:-6}"
    ;;
  *)
    echo "usage: scripts/dev.sh main [--param k=v ...] [--json] | test | build" >&2
    exit 2
    ;;
esac
