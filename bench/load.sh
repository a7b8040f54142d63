#!/usr/bin/env bash
# Load benchmark of nmid standalone against nginx, in the same run, on loopback.
#  1. cache-hit throughput and latency: wrk -t1 -c50 against nmid (1 I/O thread) and against
#     nginx (1 worker) returning the same bytes with `return 200`; prints both and the ratio;
#  2. cold burst: 1,000 concurrent first requests for one (identity, resource), reporting the
#     upstream calls the IMDS emulator counted;
#  3. RSS of nmid holding 250 pods, 1,000 bindings and 1,000 cached tokens, against nmid idle
#     with the standalone example.
#  4. with PROFILE=1: where a cached answer's CPU goes: instructions per request under
#     callgrind (two wrk runs, difference over difference, so start-up cancels out), and the
#     kernel's share of nmid's CPU time under `perf record -e cpu-clock` (when perf works).
# Usage: bench/load.sh [DURATION_SECONDS=10] [ROUNDS=3]. Needs a build in build/
# (scripts/build.sh). Section 1 alternates nmid and nginx for ROUNDS rounds and compares the
# best round of each (other load on the machine only slows rounds down), printing every round.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-10}
rounds=${2:-3}
# The server under test and wrk each get a core of their own (when there are two), so that
# neither waits behind the other in the run queue; nmid and nginx are pinned the same way.
if [ "$(nproc)" -ge 2 ]; then server_pin=(taskset -c 1); wrk_pin=(taskset -c 0); else server_pin=(); wrk_pin=(); fi
bench_name=bench
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

client_id=00000000-0000-0000-0000-0000000000a1
resource_id=/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader

start_emulator() {
    "$bin/imds-emulator" --listen 127.0.0.1:0 --identity "$client_id:$resource_id" \
        >"$work/emulator.log" 2>&1 &
    pids+=($!)
    emulator_port=$(wait_port "$work/emulator.log" "listening on")
}

# start_nmid NAME PODS CRDS [extra flags...]: sets nmid_port, nmid_pid, probe_port. A command
# in nmid_wrap (valgrind) runs nmid under it.
nmid_wrap=()
start_nmid() {
    local name=$1 pods=$2 crds=$3
    shift 3
    "${server_pin[@]}" "${nmid_wrap[@]}" "$bin/nmid" --operation-mode=managed --nmi-port=0 --http-probe-port=0 --prometheus-port=0 \
        --metadata-ip=127.0.0.1 --metadata-port="$emulator_port" --manage-iptables=false \
        --io-threads=1 --pods-file="$pods" --crds-file="$crds" "$@" >"$work/$name.log" 2>&1 &
    nmid_pid=$!
    pids+=($nmid_pid)
    wait_nmid "$work/$name.log"
}


# Fixtures: the standalone example plus a pod at 127.0.0.1 (wrk cannot choose its source
# address), and the large RSS fixture.
python3 - "$root" "$work" <<'PY'
import json, sys
root, work = sys.argv[1], sys.argv[2]
pods = json.load(open(f"{root}/deploy/standalone/pods.json"))
bench = json.loads(json.dumps(pods["items"][0]))
bench["metadata"].update(name="bench", uid="11111111-1111-1111-1111-111111111111")
bench["status"].update(podIP="127.0.0.1", podIPs=[{"ip": "127.0.0.1"}])
pods["items"].append(bench)
json.dump(pods, open(f"{work}/pods.json", "w"))

# 250 realistic pods in 50 namespaces; pod 0 is at 127.0.0.1 and bound to kv-reader-0.
items = []
for i in range(250):
    ns = f"team-{i % 50}"
    ip = "127.0.0.1" if i == 0 else f"10.244.{i // 200}.{i % 200 + 2}"
    items.append({
        "metadata": {"name": f"app-{i}-7d9f8c6b5-x2k4p", "namespace": ns, "uid": f"00000000-0000-4000-8000-{i:012d}",
                     "labels": {"app": f"app-{i}", "pod-template-hash": "7d9f8c6b5", "aadpodidbinding": f"sel-{i % 1000}"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"app-{i}-7d9f8c6b5", "uid": "x", "controller": True}]},
        "spec": {"nodeName": "node-0", "serviceAccountName": "default",
                 "containers": [{"name": "app", "image": "registry.example/app:1.2.3",
                                 "env": [{"name": f"VAR_{k}", "value": "x" * 20} for k in range(10)],
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
        "status": {"phase": "Running", "hostIP": "10.240.0.4", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": t, "status": "True"} for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]},
    })
items[0]["metadata"]["namespace"] = "team-0"
items[0]["metadata"]["labels"]["aadpodidbinding"] = "sel-0"
json.dump({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}, open(f"{work}/pods-250.json", "w"))
docs = []
for i in range(1000):
    ns = f"team-{i % 50}"
    cid = "00000000-0000-0000-0000-0000000000a1" if i == 0 else f"00000000-0000-0000-0001-{i:012d}"
    docs.append({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
                 "metadata": {"name": f"id-{i}", "namespace": ns},
                 "spec": {"type": 0, "clientID": cid,
                          "resourceID": f"/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-{i}"}})
    docs.append({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
                 "metadata": {"name": f"binding-{i}", "namespace": ns},
                 "spec": {"azureIdentity": f"id-{i}", "selector": f"sel-{i}"}})
json.dump({"apiVersion": "v1", "kind": "List", "items": docs}, open(f"{work}/crds-1000.json", "w"))
PY

wrk_run() {  # wrk_run URL -> "rps p50_ms p99_ms"
    "${wrk_pin[@]}" wrk -t1 -c50 -d"${duration}s" --latency -H "Metadata: true" "$1" >"$work/wrk.out" 2>&1
    python3 - "$work/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p = {m.group(1): ms(m.group(2), m.group(3)) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {p['50']:.3f} {p['99']:.3f} {errors.group(1) if errors else 0}")
PY
}

echo "== 1. cache-hit throughput: wrk -t1 -c50 -d${duration}s, nmid (1 I/O thread) vs nginx (1 worker)"
start_emulator
# wrk and the cold burst stand in for many pods but all come from 127.0.0.1: no per-pod
# connection cap here (bench/fairness.sh measures the per-pod limits).
start_nmid hit "$work/pods.json" "$root/deploy/standalone/crds.yaml" --max-connections-per-pod=0
target="/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
curl -fsS -H Metadata:true "http://127.0.0.1:$nmid_port$target" >"$work/body.json"
body_len=$(wc -c <"$work/body.json")
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
    server {
        listen 127.0.0.1:$nginx_port;
        location / { default_type application/json; return 200 '$(cat "$work/body.json")'; }
    }
}
CONF
"${server_pin[@]}" nginx -c "$work/nginx.conf" &
nginx_pid=$!
pids+=($nginx_pid)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$nginx_port/" >/dev/null 2>&1 && break; sleep 0.05; done
printf '%-8s %5s %12s %10s %10s %8s\n' server round req/s p50_ms p99_ms non2xx
: >"$work/rounds"
for round in $(seq "$rounds"); do
    for server in nmid nginx; do
        if [ "$server" = nmid ]; then port=$nmid_port; else port=$nginx_port; fi
        read -r rps p50 p99 err < <(wrk_run "http://127.0.0.1:$port$target")
        printf '%-8s %5s %12s %10s %10s %8s\n' "$server" "$round" "$rps" "$p50" "$p99" "$err"
        echo "$server $rps $p50 $p99 $err" >>"$work/rounds"
    done
done
upstream_calls=$(curl -fsS "http://127.0.0.1:$emulator_port/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_requests"])')
python3 - "$work/rounds" "$body_len" "$upstream_calls" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
best = {}
for server, rps, p50, p99, err in rows:
    if server not in best or float(rps) > float(best[server][0]):
        best[server] = (rps, p50, p99, err)
print(f"{'best':<8} {'':5} {'req/s':>12} {'p50_ms':>10} {'p99_ms':>10} {'non2xx':>8}")
for server in ("nmid", "nginx"):
    rps, p50, p99, err = best[server]
    print(f"{server:<8} {'':5} {rps:>12} {p50:>10} {p99:>10} {err:>8}")
ratio = float(best["nmid"][0]) / float(best["nginx"][0])
print(f"ratio nmid/nginx: {ratio:.3f}  (best of {len(rows) // 2} rounds each; body {sys.argv[2]} "
      f"bytes, upstream token calls during the runs: {sys.argv[3]})")
PY
log_bytes=$(stat -c %s "$work/hit.log")
log_lines=$(wc -l <"$work/hit.log")
python3 -c "print(f\"nmid's log during its rounds: {$log_bytes / ($rounds * $duration) / 1e6:.0f} MB/s, \"
            f\"{$log_bytes / $log_lines:.0f} bytes a line (an audit line per request; nginx's access log is off)\")"
stop_pid "$nginx_pid"

echo "== 2. cold burst: 1,000 concurrent first requests for one (identity, resource)"
curl -fsS -X POST "http://127.0.0.1:$emulator_port/_emulator/reset" >/dev/null
# IMDS takes tens of ms; 200 ms of emulated latency keeps the burst inside one fetch.
curl -fsS -X POST -H 'Content-Type: application/json' \
    -d '{"sequence":[],"latency_ms":200}' "http://127.0.0.1:$emulator_port/_emulator/faults" >/dev/null
burst=$("$bin/nmid_burst" "$nmid_port" "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com" 1000)
calls=$(curl -fsS "http://127.0.0.1:$emulator_port/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_requests"])')
echo "burst: $burst"
echo "upstream token calls for the burst: $calls (NMI would make 1000)"
curl -fsS -X POST "http://127.0.0.1:$emulator_port/_emulator/reset" >/dev/null
stop_pid "$nmid_pid"

echo "== 3. RSS"
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
start_nmid idle "$root/deploy/standalone/pods.json" "$root/deploy/standalone/crds.yaml"
idle_rss=$(rss_kb "$nmid_pid")
stop_pid "$nmid_pid"
start_nmid big "$work/pods-250.json" "$work/crds-1000.json" --upstream-rate-limit=2000 \
    --upstream-max-concurrency=50 --max-upstream-fetches-per-pod=49 \
    --max-pending-fetches-per-pod=1000 --max-tokens-per-pod=1000
{
    # Options in a curl config apply to every URL (headers accumulate), so set them once.
    echo 'header = "Metadata: true"'
    echo 'write-out = "%{http_code}\n"'
    for i in $(seq 0 999); do
        echo "url = \"http://127.0.0.1:$nmid_port/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://r$i.example\""
        echo "output = /dev/null"
    done
} >"$work/curl.cfg"
statuses=$(curl -sS --no-progress-meter --parallel --parallel-max 20 -K "$work/curl.cfg" | sort | uniq -c | tr -s ' ' | paste -sd, -)
echo "1,000 token requests (distinct resources), count and status: $statuses"
entries=$(curl -fsS "http://127.0.0.1:$probe_port/metrics" | awk '/^nmid_token_cache_entries / {print $2}')
big_rss=$(rss_kb "$nmid_pid")
echo "nmid RSS idle (standalone example):                     $((idle_rss / 1024)).$(((idle_rss % 1024) * 10 / 1024)) MiB"
echo "nmid RSS with 250 pods, 1,000 bindings, $entries cached tokens: $((big_rss / 1024)).$(((big_rss % 1024) * 10 / 1024)) MiB"
python3 -c "print(f'ratio big/idle: {$big_rss/$idle_rss:.2f}')"

[ "${PROFILE:-0}" = 1 ] || exit 0
echo "== 4. profile of a cached answer (wrk -t1 -c50 against nmid, the pod at 127.0.0.1)"
# callgrind_run SECONDS: prints "<instructions> <requests>" of one nmid under callgrind.
callgrind_run() {
    nmid_wrap=(valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.$1")
    start_nmid "cg$1" "$work/pods.json" "$root/deploy/standalone/crds.yaml"
    nmid_wrap=()
    curl -fsS -H Metadata:true "http://127.0.0.1:$nmid_port$target" >/dev/null
    wrk -t1 -c50 -d"$1s" -H "Metadata: true" "http://127.0.0.1:$nmid_port$target" >"$work/wrk.cg$1"
    stop_pid "$nmid_pid"
    echo "$(sed -nE 's/.*I *refs: *([0-9,]+).*/\1/p' "$work/cg$1.log" | tr -d ,)" \
        "$(sed -nE 's/^ *([0-9]+) requests in.*/\1/p' "$work/wrk.cg$1")"
}
if command -v valgrind >/dev/null; then
    read -r ir_a req_a < <(callgrind_run 3)
    read -r ir_b req_b < <(callgrind_run 9)
    python3 -c "print(f'instructions per cached answer (callgrind): {($ir_b-$ir_a)/($req_b-$req_a):.0f}  ({$req_a} and {$req_b} requests)')"
else
    echo "valgrind not installed: no instruction count"
fi
if perf stat -e cpu-clock true >/dev/null 2>&1; then
    start_nmid perf "$work/pods.json" "$root/deploy/standalone/crds.yaml"
    curl -fsS -H Metadata:true "http://127.0.0.1:$nmid_port$target" >/dev/null
    "${wrk_pin[@]}" wrk -t1 -c50 -d8s -H "Metadata: true" "http://127.0.0.1:$nmid_port$target" >/dev/null &
    wrk_pid=$!
    sleep 1
    perf record -q -e cpu-clock -F 2000 -p "$nmid_pid" -o "$work/perf.data" -- sleep 5 >/dev/null 2>&1
    wait "$wrk_pid"
    stop_pid "$nmid_pid"
    kernel=$(perf report -i "$work/perf.data" --no-children --sort dso --stdio 2>/dev/null |
        awk '/\[kernel\.kallsyms\]/ {print $1; exit}')
    echo "share of nmid's CPU time in the kernel (perf record -e cpu-clock): ${kernel:-unknown}"
else
    echo "perf not usable here: no kernel share"
fi
