#!/usr/bin/env bash
# Installs what is missing, builds nmid twice (optimised, and with ASan+UBSan), runs every test
# in both builds and clang-tidy over the sources. Exit code is non-zero when anything fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"

echo "== build (RelWithDebInfo)"
# Warnings are errors here (NMID_WERROR), in both builds; a plain cmake build only warns.
"$root/scripts/build.sh" "$root/build" -DNMID_WERROR=ON
echo "== tests (RelWithDebInfo)"
ctest --test-dir "$root/build" --output-on-failure -j2

# Every translation unit of the optimised build's compile database under .clang-tidy (warnings
# are errors there); run-clang-tidy exits non-zero when any file has a finding.
echo "== clang-tidy"
run-clang-tidy -p "$root/build" -quiet -j"$(nproc)" 'daemon/|iptables/|tests/|bench/'

# The same build carries the libFuzzer targets (tests/fuzz); its ctest runs each for 20 s.
echo "== build (ASan+UBSan, clang, fuzz targets)"
CC=clang CXX=clang++ "$root/scripts/build.sh" "$root/build-asan" \
    -DCMAKE_CXX_COMPILER=clang++ -DNMID_SANITIZE="address;undefined" -DNMID_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=Debug -DNMID_FUZZ=ON -DNMID_WERROR=ON
echo "== tests (ASan+UBSan, fuzz targets)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$root/build-asan" --output-on-failure -j2
