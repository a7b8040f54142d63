#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time on a copy of its committed seed corpus (the
# fuzzer adds the inputs it finds to its corpus directory; the repository's stays as it is).
# Usage: run_fuzz_test.sh FUZZER SEED_DIR SECONDS ARTIFACT_DIR
# Exit code: the fuzzer's (0 when nothing was found). A crashing input is kept in ARTIFACT_DIR
# and its path printed.
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3 artifacts=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/nmid-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$artifacts"
cp -R "$seeds/." "$work/corpus/"
# -rss_limit_mb: well above a target's working set, well below the machine's; -timeout: one
# input taking this long is a hang. -print_final_stats gives the executions per second.
rc=0
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work/corpus" 2>"$work/log" || rc=$?
grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|Done )' \
    "$work/log" || true
if [ "$rc" -ne 0 ]; then
    tail -n 80 "$work/log"
    ls -1 "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-* \
        2>/dev/null | sed 's/^/failing input: /' || true
fi
exit "$rc"
