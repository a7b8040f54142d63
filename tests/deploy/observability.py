"""Helpers of test_observability.py: metric names and label matchers in PromQL, the Prometheus
text exposition, and a live nmid standalone on loopback (with the IMDS emulator)."""

import http.client
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import deploylib as d

STANDALONE = os.path.join(d.DEPLOY, "standalone")
CLIENT_ID = "00000000-0000-0000-0000-0000000000a1"
RESOURCE_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/"
               "Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader")
TOKEN_PATH = ("/metadata/identity/oauth2/token?api-version=2018-02-01"
              "&resource=https%3A%2F%2Fvault.azure.net")
DEADLINE = 15.0

# --- PromQL --------------------------------------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
             "and", "or", "unless", "inf", "nan"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")


def metric_names(expr):
    """The metric names an expression selects: identifiers left once strings, label matchers,
    ranges, grouping label lists, function calls and keywords are taken out."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = _GROUPING.sub(" ", e)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        if not m.group(2) and m.group(1).lower() not in _KEYWORDS:
            names.add(m.group(1))
    return names


def matcher_labels(expr):
    """(metric, label name) for every label matcher of a selector with a metric name."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return {(m.group(1), label)
            for m in _SELECTOR.finditer(e)
            for label in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", m.group(2))}


def for_promtool(expr):
    """A dashboard query with Grafana's variables replaced by values Prometheus accepts."""
    return (expr.replace("$__rate_interval", "5m").replace("${datasource}", "")
            .replace("$job", ".*").replace("$instance", ".*"))


def dashboard_panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(dashboard):
    return [(p["title"], t["expr"]) for p in dashboard_panels(dashboard)
            for t in p.get("targets", [])]


def alert_rules(rules):
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def parse_exposition(text):
    """Sample name -> list of label-name sets, and family name -> TYPE, of /metrics text."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s", line)
            labels = set(re.findall(r'([a-zA-Z_]\w*)="', m.group(2) or ""))
            samples.setdefault(m.group(1), []).append(labels)
    return samples, types


def registered_under(source, condition):
    """Metric names registered in the block `if (<condition>) {...}` of `source`."""
    start = source.index(f"if ({condition}) {{")
    depth, i = 0, source.index("{", start)
    for i in range(i, len(source)):
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        if depth == 0:
            break
    return set(re.findall(r'"((?:nmid|aadpodidentity)_\w+)"', source[start:i]))


# --- a live nmid ---------------------------------------------------------------------------

def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def get(port, path, source="127.0.0.1", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def wait_until(what, check, procs):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{p.args[0]} exited with {p.returncode} before {what}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {DEADLINE} s waiting for {what}")


class LiveNmid:
    def __init__(self, nmid, emulator):
        self.nmid, self.emulator = nmid, emulator
        self.procs = []
        self.logdir = tempfile.mkdtemp(prefix="nmid-observability-")

    def spawn(self, name, args):
        log = open(os.path.join(self.logdir, name + ".log"), "wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name):
        with open(os.path.join(self.logdir, name + ".log"), encoding="utf-8",
                  errors="replace") as f:
            return f.read()

    def start(self):
        self.nmi_port, imds_port, self.probe_port, self.metrics_port = free_ports(4)
        self.spawn("imds-emulator", [self.emulator, "--listen", f"127.0.0.1:{imds_port}",
                                     "--identity", f"{CLIENT_ID}:{RESOURCE_ID}"])
        wait_until("imds-emulator to listen",
                   lambda: socket.create_connection(("127.0.0.1", imds_port), 1).close() or True,
                   self.procs)
        self.spawn("nmid", [
            self.nmid, "--operation-mode=managed", "--forceNamespaced",
            "--nmi-listen-address=127.0.0.1", f"--nmi-port={self.nmi_port}",
            "--metadata-ip=127.0.0.1", f"--metadata-port={imds_port}",
            f"--http-probe-port={self.probe_port}", f"--prometheus-port={self.metrics_port}",
            "--manage-iptables=false", "--debug-address=127.0.0.1:0",
            f"--pods-file={STANDALONE}/pods.json",
            f"--crds-file={STANDALONE}/crds.yaml"])
        try:
            wait_until("nmid /readyz 200", lambda: get(self.probe_port, "/readyz")[0] == 200,
                       self.procs)
        except AssertionError as e:
            raise AssertionError(f"{e}\nnmid log:\n{self.log('nmid')}") from None

    def token(self, pod_ip):
        return get(self.nmi_port, TOKEN_PATH, source=pod_ip, headers={"Metadata": "true"})

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.logdir, ignore_errors=True)
