#!/usr/bin/env bash
# Runs nmid standalone on this machine: the IMDS emulator on 127.0.0.1:2580 with one
# user-assigned identity, nmid on 127.0.0.1:2579 reading pods and identities from
# deploy/standalone/. Returns once nmid is ready and leaves both running in the background.
#   scripts/run-standalone.sh          install what is missing, build, start
#   scripts/run-standalone.sh stop     stop both (by the PIDs this script recorded)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${NMID_STATE_DIR:-/tmp/nmid-standalone}
mkdir -p "$state"

stop() {
    for name in nmid imds-emulator; do
        if [ -f "$state/$name.pid" ]; then
            pid=$(cat "$state/$name.pid")
            if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid"
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            fi
            rm -f "$state/$name.pid"
        fi
    done
}

if [ "${1:-start}" = "stop" ]; then
    stop
    echo "stopped"
    exit 0
fi

"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j"$(nproc)" --target nmid imds-emulator
stop

client_id=00000000-0000-0000-0000-0000000000a1
resource_id=/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader
"$root/build/bin/imds-emulator" --listen 127.0.0.1:2580 \
    --identity "$client_id:$resource_id" >"$state/imds-emulator.log" 2>&1 &
echo $! >"$state/imds-emulator.pid"

"$root/build/bin/nmid" --operation-mode=managed --forceNamespaced \
    --nmi-listen-address=127.0.0.1 --nmi-port=2579 \
    --metadata-ip=127.0.0.1 --metadata-port=2580 \
    --http-probe-port=8085 --prometheus-port=9090 --manage-iptables=false \
    --pods-file="$root/deploy/standalone/pods.json" \
    --crds-file="$root/deploy/standalone/crds.yaml" >"$state/nmid.log" 2>&1 &
echo $! >"$state/nmid.pid"

for _ in $(seq 100); do
    if curl -fsS http://127.0.0.1:8085/readyz >/dev/null 2>&1; then
        echo "nmid is ready on 127.0.0.1:2579 (logs: $state/nmid.log; stop: scripts/run-standalone.sh stop)"
        echo "fetch a token as pod default/demo (127.0.0.2):"
        echo "  curl --interface 127.0.0.2 -H Metadata:true 'http://127.0.0.1:2579/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net'"
        exit 0
    fi
    if ! kill -0 "$(cat "$state/nmid.pid")" 2>/dev/null; then
        echo "nmid exited; its log:" >&2
        cat "$state/nmid.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "nmid did not become ready in 10 s; its log:" >&2
cat "$state/nmid.log" >&2
exit 1
