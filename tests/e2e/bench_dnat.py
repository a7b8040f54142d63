"""Through-DNAT benchmark (bench/dnat.sh runs it): wrk -t1 -c50 from a pod namespace to
http://169.254.169.254/... through nmid's own DNAT rule, against nmid (cached token, 1 I/O
thread) and, in the same run, against nginx (1 worker) on the same DNAT target ip:port
returning the same body bytes. nmid is stopped with SIGTERM between the two runs: its rules
stay (fail-closed), so nginx is reached through exactly the same rules and path.
The server and wrk are pinned to separate cores, as bench/load.sh does.
Usage: bench_dnat.py BIN_DIR [DURATION_SECONDS=10] [TARGET=loopback|node] [ROUNDS=2]
Rounds alternate nmid and nginx (a new nmid each round, cache warmed by one request first);
the best round of each is compared, since other load on the machine only slows rounds down."""

import os
import re
import shutil
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fixture  # noqa: E402
import nslib  # noqa: E402
from nslib import wait_until  # noqa: E402


def parse_wrk(text):
    def ms(v, unit):
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        raise RuntimeError("unexpected wrk output:\n" + text)
    p = {g.group(1): ms(g.group(2), g.group(3))
         for g in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    return {"rps": float(m.group(1)), "p50": p["50"], "p99": p["99"],
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sock.group(1).strip() if sock else "none"}


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    bin_dir = os.path.abspath(argv[1])
    duration = int(argv[2]) if len(argv) > 2 else 10
    target = fixture.NODE_IP if len(argv) > 3 and argv[3] == "node" else "127.0.0.1"
    rounds = int(argv[4]) if len(argv) > 4 else 2
    nslib.self_check()
    if os.geteuid() != 0:
        print("bench/dnat.sh: needs root (network namespaces, iptables inside them)", file=sys.stderr)
        return 1
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            print(f"bench/dnat.sh: {tool} is not installed (scripts/install-deps.sh)", file=sys.stderr)
            return 1
    nslib.install_signal_cleanup()
    nslib.delete_leftovers()
    two_cores = (os.cpu_count() or 1) >= 2
    server_cpu, wrk_cpu = (1, 0) if two_cores else (None, None)
    node = fixture.Node(bin_dir)
    try:
        node.start()
        topo = node.topo
        url = nslib.token_url(fixture.RESOURCE)
        w = topo.workdir
        os.makedirs(f"{w}/nginx", exist_ok=True)

        def wrk():
            pin = ["taskset", "-c", str(wrk_cpu)] if wrk_cpu is not None else []
            cp = topo.nsexec(node.bound, [*pin, "wrk", "-t1", "-c50", f"-d{duration}s", "--latency",
                                          "-H", "Metadata: true", url], timeout=duration + 60)
            return parse_wrk(cp.stdout)

        def run_nmid():
            """One nmid run: a new nmid (rules already in place after the first), a warm-up
            request that fills its cache, wrk, SIGTERM (the rules stay)."""
            nmid = node.start_nmid(backend="auto", target=target, extra=["--io-threads=1"], interval=60,
                                   wait_ready=False, cpu=server_cpu)
            node.wait_ready(nmid)
            status, body, _ = node.token(node.bound)
            if status != 200:
                raise RuntimeError(f"warm-up request: {status} {body}")
            calls_before = node.emulator_stats()["token_requests"]
            r = wrk()
            r["upstream"] = node.emulator_stats()["token_requests"] - calls_before
            nmid.signal(signal.SIGTERM)
            nmid.wait(timeout=15)
            rules = node.nat_rules("nft") + node.nat_rules("legacy")
            if not any("DNAT" in line for line in rules):
                raise RuntimeError("nmid's rules are gone after SIGTERM; nginx cannot reuse them")
            return r, body

        def run_nginx(body):
            escaped = body.replace("\\", "\\\\").replace("'", "\\'")
            with open(f"{w}/nginx.conf", "w") as f:
                f.write(f"""worker_processes 1;
daemon off;
user root;
pid {w}/nginx/nginx.pid;
error_log {w}/nginx/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {w}/nginx; proxy_temp_path {w}/nginx; fastcgi_temp_path {w}/nginx;
    uwsgi_temp_path {w}/nginx; scgi_temp_path {w}/nginx;
    server {{
        listen {target}:{fixture.NMI_PORT};
        location / {{ default_type application/json; return 200 '{escaped}'; }}
    }}
}}
""")
            nginx = topo.spawn(topo.node, "nginx", ["nginx", "-e", f"{w}/nginx/error.log", "-c",
                                                    f"{w}/nginx.conf"], cpu=server_cpu)
            wait_until(lambda: node.token(node.bound)[0] == 200 or not nginx.alive(), 10,
                       "nginx behind the DNAT")
            status, same, _ = node.token(node.bound)
            if status != 200 or same != body:
                raise RuntimeError(f"nginx does not answer the same bytes: {status} {nginx.log()}")
            r = wrk()
            nginx.stop()
            return r

        print(f"== through-DNAT throughput: wrk -t1 -c50 -d{duration}s from a pod namespace to "
              f"169.254.169.254:80, DNAT to {target}:{fixture.NMI_PORT}; {rounds} rounds, "
              f"nmid and nginx alternating")
        runs = {"nmid": [], "nginx": []}
        body = ""
        for _ in range(rounds):
            r, body = run_nmid()
            runs["nmid"].append(r)
            runs["nginx"].append(run_nginx(body))

        print(f"{'server':<8} {'round':>5} {'req/s':>12} {'p50_ms':>10} {'p99_ms':>10} {'non2xx':>8}  socket errors")
        for name in ("nmid", "nginx"):
            for i, r in enumerate(runs[name]):
                print(f"{name:<8} {i + 1:>5} {r['rps']:>12.0f} {r['p50']:>10.3f} {r['p99']:>10.3f} "
                      f"{r['non2xx']:>8}  {r['socket_errors']}")
        # Best round of each: other load on the machine only ever slows a round down.
        best = {name: max(rs, key=lambda r: r["rps"]) for name, rs in runs.items()}
        print(f"{'best':<8} {'':>5} {'req/s':>12} {'p50_ms':>10} {'p99_ms':>10}")
        for name, r in best.items():
            print(f"{name:<8} {'':>5} {r['rps']:>12.0f} {r['p50']:>10.3f} {r['p99']:>10.3f}")
        upstream = sum(r["upstream"] for r in runs["nmid"])
        print(f"ratio nmid/nginx: {best['nmid']['rps'] / best['nginx']['rps']:.3f}  (body {len(body)} bytes, "
              f"upstream token calls during the nmid runs: {upstream}; cores: "
              f"{'server 1, wrk 0' if two_cores else 'shared'})")
        return 0
    finally:
        node.destroy()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
