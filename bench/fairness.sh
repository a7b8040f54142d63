#!/usr/bin/env bash
# Per-pod fairness benchmark (issue 11): one hostile pod (127.0.0.2) and one victim pod
# (127.0.0.3), each bound to an identity of its own, against nmid standalone and the IMDS
# emulator (UPSTREAM_MS of latency per token) on loopback. Prints, in one run:
#  1. the victim's first-token latency alone (the baseline: upstream latency + nmid), then while
#     the hostile pod has 400 concurrent distinct-resource token requests outstanding, and the
#     ratio of the two (goal: victim <= baseline + 100 ms);
#  2. the victim's answer while the hostile pod holds 4,200 idle connections (goal: 200);
#  3. nmid's RSS after the hostile pod asked for 3,000 distinct 7 KB resources (goal: <= 64 MiB
#     or those requests refused), and for 3,000 distinct 2,000-byte resources (under the
#     2 KiB limit: bounded by the per-pod key cap and the cache's byte bound).
# Usage: bench/fairness.sh [UPSTREAM_MS=100] [EXTRA NMID FLAGS...]. Needs a build in build/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
upstream_ms=${1:-100}
shift || true
bench_name=fair
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

attacker_id=00000000-0000-0000-0000-0000000000a1
victim_id=00000000-0000-0000-0000-0000000000b2
python3 - "$work" "$attacker_id" "$victim_id" <<'PY'
import json, sys
work, attacker_id, victim_id = sys.argv[1:4]
def pod(name, ns, ip, selector):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                         "labels": {"aadpodidbinding": selector}},
            "spec": {"nodeName": "bench", "containers": [{"name": "c", "image": "debian:12"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}
json.dump({"apiVersion": "v1", "kind": "List",
           "items": [pod("hostile", "team-a", "127.0.0.2", "a"), pod("victim", "team-b", "127.0.0.3", "b")]},
          open(f"{work}/pods.json", "w"))
docs = []
for ns, sel, cid in (("team-a", "a", attacker_id), ("team-b", "b", victim_id)):
    docs.append({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
                 "metadata": {"name": f"id-{sel}", "namespace": ns}, "spec": {"type": 0, "clientID": cid}})
    docs.append({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
                 "metadata": {"name": f"bind-{sel}", "namespace": ns},
                 "spec": {"azureIdentity": f"id-{sel}", "selector": sel}})
json.dump({"apiVersion": "v1", "kind": "List", "items": docs}, open(f"{work}/crds.json", "w"))
PY

"$bin/imds-emulator" --listen 127.0.0.1:0 --latency "${upstream_ms}ms" \
    --identity "$attacker_id:/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a" \
    --identity "$victim_id:/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/b" \
    >"$work/emulator.log" 2>&1 &
pids+=($!)
emulator_port=$(wait_port "$work/emulator.log" "listening on")

start_nmid() {
    "$bin/nmid" --operation-mode=managed --nmi-port=0 --http-probe-port=0 --prometheus-port=0 \
        --metadata-ip=127.0.0.1 --metadata-port="$emulator_port" --manage-iptables=false \
        --pods-file="$work/pods.json" --crds-file="$work/crds.json" "$@" \
        >"$work/nmid.log" 2>&1 &
    nmid_pid=$!
    pids+=($nmid_pid)
    wait_nmid "$work/nmid.log"
}
stop_nmid() { kill -TERM "$nmid_pid" 2>/dev/null || true; wait "$nmid_pid" 2>/dev/null || true; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

echo "== 1. victim's first token while another pod has 400 distinct-resource requests outstanding"
echo "   (IMDS emulator latency ${upstream_ms} ms; IMDS budget 5 concurrent, 20/s)"
start_nmid "$@"
out=$("$bin/nmid_fairness" queue "$nmid_port" 127.0.0.2 127.0.0.3 400)
echo "$out"
base=$(field "$out" baseline_ms); victim=$(field "$out" victim_ms)
python3 -c "
b, v = $base, $victim
print(f'victim first token: {v:.1f} ms; alone: {b:.1f} ms; ratio {v / b:.2f}; '
      f'extra {v - b:.1f} ms (goal <= 100 ms): ' + ('PASS' if v - b <= 100 else 'FAIL'))"
stop_nmid

echo "== 2. victim's answer while another pod holds 4,200 connections"
start_nmid "$@"
out=$("$bin/nmid_fairness" conns "$nmid_port" 127.0.0.2 127.0.0.3 4200)
echo "$out"
status=$(field "$out" victim_status)
echo "victim status $status (goal 200): $([ "$status" = 200 ] && echo PASS || echo FAIL)"
stop_nmid

echo "== 3. RSS after 3,000 distinct resources from one pod"
echo "   (nmid's IMDS budget and the pod's share raised to 2,000/s and 50 concurrent so that every"
echo "   fetch happens in time: memory is then bounded by the key cap and the byte bound alone)"
for len in 7000 2000; do
    start_nmid --upstream-rate-limit=2000 --upstream-max-concurrency=50 \
        --max-upstream-fetches-per-pod=49 --max-pending-fetches-per-pod=100 "$@"
    before=$(rss_mib "$nmid_pid")
    out=$("$bin/nmid_fairness" memory "$nmid_port" 127.0.0.2 3000 "$len" 50)
    after=$(rss_mib "$nmid_pid")
    echo "$out"
    echo "resource ${len} bytes: RSS ${before} MiB idle -> ${after} MiB after (goal <= 64 MiB): $(
        python3 -c "print('PASS' if $after <= 64 else 'FAIL')")"
    stop_nmid
done
