#!/usr/bin/env bash
# Run one busted spec file under LuaJIT from the repository root (ctest calls
# this once per spec). IPK_BUILD_DIR must name the build with libipk.so.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${IPK_BUILD_DIR:=$PWD/build}"
export IPK_BUILD_DIR
exec busted --lua=luajit -o utfTerminal "$@"
