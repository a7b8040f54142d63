#!/usr/bin/env bash
# Through-DNAT benchmark: wrk -t1 -c50 from a pod network namespace to 169.254.169.254:80,
# redirected by nmid's own iptables rule, against nmid (cached token, 1 I/O thread) and, in the
# same run, against nginx (1 worker) behind the same rule returning the same bytes; prints
# req/s, p50, p99 of both and the ratio. Server and wrk are pinned to separate cores.
# Everything runs in network namespaces the script creates and deletes (tests/e2e/nslib.py);
# the machine's own network is not touched.
# Usage (root): bench/dnat.sh [DURATION_SECONDS=10] [TARGET=loopback|node] [ROUNDS=2]. Rounds
# alternate nmid and nginx; the best round of each is compared. Needs a build in
# build/ (scripts/build.sh), or NMID_BIN=<dir with nmid and imds-emulator>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${NMID_BIN:-$root/build/bin}
if [ "$(id -u)" -ne 0 ]; then
    echo "bench/dnat.sh: needs root (network namespaces and iptables inside them)" >&2
    exit 1
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# Debian's interpreter: the helpers need nothing beyond the standard library, but a pyenv or
# venv python3 first in PATH must not matter.
exec /usr/bin/python3 "$root/tests/e2e/bench_dnat.py" "$bin" "${1:-10}" "${2:-loopback}" "${3:-2}"
