#!/usr/bin/env bash
# g++ 12.2 miscompiles `co_await` inside an if condition and inside a conditional expression
# yielding a class (crashes at run time, reproduced with three-line programs). Fails when
# either form appears in the sources; name the awaited result first instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
hits=$(grep -rnE --include='*.cpp' --include='*.hpp' \
    -e '\bif \((.*[^/])?co_await' -e '\? co_await|\? [^;"]* : co_await' \
    daemon include tests bench iptables 2>/dev/null | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
if [ -n "$hits" ]; then
    echo "co_await inside a condition (g++ 12 miscompiles it):"
    echo "$hits"
    exit 1
fi
echo "no co_await inside conditions"
