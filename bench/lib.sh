# Shared by the bench scripts (source it after setting `root`): a work directory removed on
# exit, the PIDs started (ended by PID on exit), waiting for a logged port and for /readyz.
# shellcheck shell=bash
bin=${NMID_BIN:-$root/build/bin}
work=$(mktemp -d "/tmp/nmid-${bench_name:-bench}-XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# wait_port LOGFILE MARKER: prints the port of "MARKER host:port" once it appears in LOGFILE.
wait_port() {
    for _ in $(seq 200); do
        if line=$(grep -m1 "$2" "$1" 2>/dev/null); then
            sed -E "s/.*$2 [^ ]*:([0-9]+).*/\1/" <<<"$line"
            return 0
        fi
        sleep 0.05
    done
    echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; return 1
}

# wait_nmid LOGFILE: sets nmid_port and probe_port from nmid's log, then waits for /readyz.
wait_nmid() {
    nmid_port=$(wait_port "$1" "listening on")
    probe_port=$(grep -m1 "listening on" "$1" | sed -E 's/.*probe port ([0-9]+).*/\1/')
    for _ in $(seq 200); do
        curl -fsS "http://127.0.0.1:$probe_port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "nmid not ready" >&2; cat "$1" >&2; return 1
}

stop_pid() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
