#!/usr/bin/env bash
# Runs a long fuzzing campaign of one libFuzzer target (tests/fuzz/<TARGET>_fuzz.cpp).
# Usage: scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags...]
#   e.g. scripts/fuzz.sh request_head 300
#        scripts/fuzz.sh pod_list 3600 -jobs=2 -workers=2
# Builds the target when needed (the ASan+UBSan clang build, build-asan, configured with
# -DNMID_FUZZ=ON; NMID_FUZZ_BUILD overrides the directory), and keeps the corpus it grows in
# NMID_FUZZ_CORPUS (default ~/.cache/nmid-fuzz/TARGET), outside the repository: the committed
# seeds (tests/fuzz/corpus/TARGET) are read, never written. Prints executions per second,
# coverage and corpus size, and any crashing input (kept in the corpus directory's
# artifacts/). Exit code: the fuzzer's (non-zero when it found something).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2
    echo "targets: $(cd "$root/tests/fuzz" && ls -1 ./*_fuzz.cpp | sed 's|^\./||; s|_fuzz\.cpp$||' | tr '\n' ' ')" >&2
    exit 2
fi
target=$1 seconds=$2
shift 2
if [ ! -f "$root/tests/fuzz/${target}_fuzz.cpp" ]; then
    echo "fuzz.sh: no target $target (tests/fuzz/${target}_fuzz.cpp)" >&2
    exit 2
fi
build=${NMID_FUZZ_BUILD:-$root/build-asan}
corpus=${NMID_FUZZ_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/nmid-fuzz/$target}
artifacts=$corpus/artifacts

if ! grep -q '^NMID_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    echo "== configure $build (clang, ASan+UBSan, NMID_FUZZ=ON)"
    CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ \
        -DNMID_SANITIZE="address;undefined" -DNMID_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug \
        -DNMID_FUZZ=ON >/dev/null
fi
echo "== build nmid_fuzz_$target"
if ! cmake --build "$build" -j"${NMID_JOBS:-$(nproc)}" --target "nmid_fuzz_$target"; then
    grep -h '^NMID_FUZZ_MISSING\|libFuzzer' "$build/CMakeCache.txt" >&2 || true
    echo "fuzz.sh: could not build nmid_fuzz_$target (clang and libclang-rt-14-dev needed)" >&2
    exit 1
fi

mkdir -p "$corpus" "$artifacts"
log=$corpus/last-run.log
echo "== fuzz $target for ${seconds}s; corpus $corpus (seeds: tests/fuzz/corpus/$target)"
touch "$log.start"
set +e
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$build/bin/nmid_fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" \
    "$corpus" "$root/tests/fuzz/corpus/$target" 2>&1 | tee "$log" |
    grep --line-buffered -E '^#[0-9]+[[:space:]]+(pulse|DONE)|ERROR|invariant'
rc=${PIPESTATUS[0]}
set -e

echo "== summary: $target"
grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
echo "corpus: $(find "$corpus" -maxdepth 1 -type f | wc -l) inputs in $corpus"
if [ "$rc" -ne 0 ]; then
    echo "fuzzer exit code $rc; failing inputs:"
    find "$artifacts" -type f -newer "$log.start" | sed 's/^/  /'
    tail -n 60 "$log"
fi
rm -f "$log.start"
exit "$rc"
