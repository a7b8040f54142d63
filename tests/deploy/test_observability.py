#!/usr/bin/env python3
"""deploy/grafana/nmid.json and deploy/prometheus/nmid-rules.yaml (issue 13 item 2): the rules
pass `promtool check rules` and their unit tests (`promtool test rules`, one firing and one
silent case per alert); the dashboard is well formed and its queries parse; and every metric
either uses is exported by a live nmid (standalone, on loopback) after some token traffic.

Usage: test_observability.py <nmid binary> <imds-emulator binary>
Skips (exit 77) with what to install when promtool is missing."""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import deploylib as d

PROMTOOL = shutil.which("promtool")
DASHBOARD = os.path.join(d.DEPLOY, "grafana", "nmid.json")
RULES = os.path.join(d.DEPLOY, "prometheus", "nmid-rules.yaml")
RULES_TEST = os.path.join(d.DEPLOY, "prometheus", "nmid-rules.test.yaml")
DAEMON_METRICS = os.path.join(d.ROOT, "daemon", "app", "daemon_metrics.cpp")
STANDALONE = os.path.join(d.DEPLOY, "standalone")

CLIENT_ID = "00000000-0000-0000-0000-0000000000a1"
RESOURCE_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/"
               "Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader")
BOUND_POD_IP, UNBOUND_POD_IP = "127.0.0.2", "127.0.0.3"  # deploy/standalone/pods.json
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
            "--manage-iptables=false", f"--pods-file={STANDALONE}/pods.json",
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


# --- the tests -----------------------------------------------------------------------------

class Rules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rules = d.load_docs(RULES)[0]
        cls.tests = d.load_docs(RULES_TEST)[0]

    def test_promtool_check_rules(self):
        out = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_promtool_unit_tests_pass(self):
        out = subprocess.run([PROMTOOL, "test", "rules", os.path.basename(RULES_TEST)],
                             cwd=os.path.dirname(RULES_TEST), capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_every_alert_is_complete(self):
        names = [r["alert"] for r in alert_rules(self.rules)]
        self.assertEqual(len(names), len(set(names)), names)
        for rule in alert_rules(self.rules):
            with self.subTest(rule["alert"]):
                self.assertRegex(rule["alert"], r"^Nmid[A-Z]\w+$")
                self.assertIn("for", rule)
                self.assertIn(rule.get("labels", {}).get("severity"), {"critical", "warning"})
                for key in ("summary", "description"):
                    self.assertTrue(rule.get("annotations", {}).get(key), key)
                self.assertRegex(rule["annotations"]["description"], r"Check")

    def test_every_alert_has_a_firing_and_a_silent_case(self):
        cases = {}
        for test in self.tests["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
        for rule in alert_rules(self.rules):
            with self.subTest(rule["alert"]):
                expected = cases.get(rule["alert"], [])
                self.assertIn([], expected, "no case where it stays silent")
                firing = [a for alerts in expected for a in alerts]
                self.assertTrue(firing, "no case where it fires")
                for alert in firing:
                    self.assertEqual(alert["exp_labels"]["severity"], rule["labels"]["severity"])
                    self.assertEqual(set(alert["exp_annotations"]), set(rule["annotations"]))


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DASHBOARD, encoding="utf-8") as f:
            cls.dashboard = json.load(f)

    def test_variables(self):
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        self.assertEqual(variables["instance"]["type"], "query")
        self.assertGreaterEqual(self.dashboard["schemaVersion"], 36)

    def test_panels(self):
        panels = list(dashboard_panels(self.dashboard))
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids are not unique")
        for p in panels:
            with self.subTest(p["title"]):
                self.assertLessEqual(p["gridPos"]["x"] + p["gridPos"]["w"], 24)
                if p["type"] == "row":
                    continue
                self.assertEqual(p["datasource"]["uid"], "${datasource}")
                self.assertTrue(p["targets"], "panel without a query")
                for t in p["targets"]:
                    self.assertTrue(t["expr"].strip())
                    self.assertEqual(t["datasource"]["uid"], "${datasource}")
                    self.assertIn('instance=~"$instance"', t["expr"])

    def test_histogram_quantiles(self):
        exprs = [e for _, e in dashboard_exprs(self.dashboard) if "histogram_quantile" in e]
        self.assertTrue(exprs)
        for q in ("0.5", "0.95", "0.99"):
            self.assertTrue(any(f"histogram_quantile({q}," in e for e in exprs), q)
        for e in exprs:
            self.assertRegex(e, r"sum by \(le\b.*_bucket\{")

    def test_queries_parse(self):
        """promtool parses every query (as recording rules in a scratch rules file)."""
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"nmid:dashboard:query{i}", "expr": for_promtool(e)}
            for i, (_, e) in enumerate(dashboard_exprs(self.dashboard))]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            d.yaml.safe_dump(rules, f)
            f.flush()
            out = subprocess.run([PROMTOOL, "check", "rules", f.name], capture_output=True,
                                 text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


class MetricsExist(unittest.TestCase):
    """Every metric the dashboard and the rules use is in a live nmid's /metrics."""

    @classmethod
    def setUpClass(cls):
        with open(DASHBOARD, encoding="utf-8") as f:
            exprs = [e for _, e in dashboard_exprs(json.load(f))]
        exprs += [r["expr"] for r in alert_rules(d.load_docs(RULES)[0])]
        cls.used = set().union(*(metric_names(e) for e in exprs))
        cls.matchers = set().union(*(matcher_labels(e) for e in exprs))
        with open(DAEMON_METRICS, encoding="utf-8") as f:
            # Only with the iptables loop, which a test on loopback must not run.
            cls.iptables_only = registered_under(f.read(), "reconciler")
        live = LiveNmid(*ARGS)
        cls.addClassCleanup(live.stop)
        live.start()
        # A miss, a hit (one upstream call) and a 404: request, upstream and NMI series.
        cls.tokens = [live.token(BOUND_POD_IP)[0], live.token(BOUND_POD_IP)[0],
                      live.token(UNBOUND_POD_IP)[0]]
        cls.readyz = get(live.probe_port, "/readyz")[1]
        status, body = get(live.metrics_port, "/metrics")
        assert status == 200, (status, body)
        cls.samples, cls.types = parse_exposition(body)

    def test_traffic_was_answered(self):
        self.assertEqual(self.tokens, [200, 200, 404])
        self.assertIn("not managed", self.readyz)

    def test_extractor_finds_only_nmid_metrics(self):
        self.assertIn("nmid_request_duration_seconds_bucket", self.used)
        for name in self.used:
            self.assertRegex(name, r"^(nmid|aadpodidentity)_[a-z_]+$")

    def test_every_used_metric_is_exported(self):
        self.assertIn("nmid_iptables_in_sync", self.iptables_only)
        for name in sorted(self.used):
            with self.subTest(name):
                if name in self.iptables_only:
                    self.assertNotIn(name, self.samples, "exported without the iptables loop?")
                    continue
                self.assertIn(name, self.samples)

    def test_histograms_have_bucket_sum_and_count(self):
        for name in sorted(self.used):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if self.types.get(base) != "histogram":
                continue
            with self.subTest(base):
                for suffix in ("_bucket", "_sum", "_count"):
                    self.assertIn(base + suffix, self.samples)

    def test_matched_labels_exist(self):
        for metric, label in sorted(self.matchers):
            if label in ("job", "instance") or metric in self.iptables_only:
                continue
            with self.subTest(f"{metric}{{{label}}}"):
                self.assertIn(metric, self.samples)
                self.assertTrue(any(label in s for s in self.samples[metric]),
                                self.samples[metric])


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(f"usage: {sys.argv[0]} <nmid binary> <imds-emulator binary>")
    ARGS = [os.path.abspath(a) for a in sys.argv[1:3]]
    if PROMTOOL is None:
        print("SKIP: promtool is missing; apt-get install prometheus (scripts/install-deps.sh)")
        sys.exit(77)
    unittest.main(argv=sys.argv[:1] + sys.argv[3:], verbosity=2)
