#!/usr/bin/env bash
# Configures and builds nmid. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Binaries land in BUILD_DIR/bin (nmid, imds-emulator, benches).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
jobs=${NMID_JOBS:-$(nproc)}
# ccache (when installed) keys on paths relative to the checkout, so a fresh clone elsewhere
# (CI) reuses objects built from the same sources.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=${NMID_BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
cmake --build "$build" -j"$jobs"
