#!/usr/bin/env python3
"""deploy/grafana/nmid.json and deploy/prometheus/nmid-rules.yaml (issue 13 item 2): the rules
pass `promtool check rules` and their unit tests (`promtool test rules`, one firing and one
silent case per alert); the dashboard is well formed and its queries parse; and every metric
either uses is exported by a live nmid (standalone, on loopback) after some token traffic.

Usage: test_observability.py <nmid binary> <imds-emulator binary>
Skips (exit 77) with what to install when promtool is missing."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import deploylib as d
import observability as o

PROMTOOL = shutil.which("promtool")
DASHBOARD = os.path.join(d.DEPLOY, "grafana", "nmid.json")
RULES = os.path.join(d.DEPLOY, "prometheus", "nmid-rules.yaml")
RULES_TEST = os.path.join(d.DEPLOY, "prometheus", "nmid-rules.test.yaml")
DAEMON_METRICS = os.path.join(d.ROOT, "daemon", "app", "daemon_metrics.cpp")
BOUND_POD_IP, UNBOUND_POD_IP = "127.0.0.2", "127.0.0.3"  # deploy/standalone/pods.json


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
        names = [r["alert"] for r in o.alert_rules(self.rules)]
        self.assertEqual(len(names), len(set(names)), names)
        for rule in o.alert_rules(self.rules):
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
        for rule in o.alert_rules(self.rules):
            with self.subTest(rule["alert"]):
                expected = cases.get(rule["alert"], [])
                self.assertIn([], expected, "no case where it stays silent")
                firing = [a for alerts in expected for a in alerts]
                self.assertTrue(firing, "no case where it fires")
                for alert in firing:
                    self.assertEqual(alert["exp_labels"]["severity"], rule["labels"]["severity"])
                    self.assertEqual(set(alert["exp_annotations"]), set(rule["annotations"]))


class Promql(unittest.TestCase):
    """The extraction the live check relies on."""

    def test_metric_names(self):
        self.assertEqual(o.metric_names(
            'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route=~"x|y"}[5m])))'
            ' / on (instance) group_left (node) b > bool 0.1 or vector(1) unless c offset 5m'
            ' + d[$__rate_interval]'),
            {"a_bucket", "b", "c", "d"})
        self.assertEqual(o.metric_names('sum without (status) (e{s="f g(h)"}) and max(i)'),
                         {"e", "i"})

    def test_matcher_labels(self):
        self.assertEqual(o.matcher_labels('rate(a{x="1", y!~"b{c}"}[5m]) / b{z!="q=r"}'),
                         {("a", "x"), ("a", "y"), ("b", "z")})


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
        panels = list(o.dashboard_panels(self.dashboard))
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
        exprs = [e for _, e in o.dashboard_exprs(self.dashboard) if "histogram_quantile" in e]
        self.assertTrue(exprs)
        for q in ("0.5", "0.95", "0.99"):
            self.assertTrue(any(f"histogram_quantile({q}," in e for e in exprs), q)
        for e in exprs:
            self.assertRegex(e, r"sum by \(le\b.*_bucket\{")

    def test_queries_parse(self):
        """promtool parses every query (as recording rules in a scratch rules file)."""
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"nmid:dashboard:query{i}", "expr": o.for_promtool(e)}
            for i, (_, e) in enumerate(o.dashboard_exprs(self.dashboard))]}]}
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
            exprs = [e for _, e in o.dashboard_exprs(json.load(f))]
        exprs += [r["expr"] for r in o.alert_rules(d.load_docs(RULES)[0])]
        cls.used = set().union(*(o.metric_names(e) for e in exprs))
        with open(DASHBOARD, encoding="utf-8") as f:
            prose = [p.get("description", "") for p in o.dashboard_panels(json.load(f))]
        prose += [text for r in o.alert_rules(d.load_docs(RULES)[0])
                  for text in r["annotations"].values()]
        cls.mentioned = set(re.findall(r"\b(?:nmid|aadpodidentity)_[a-z_]*[a-z]", " ".join(prose)))
        cls.matchers = set().union(*(o.matcher_labels(e) for e in exprs))
        with open(DAEMON_METRICS, encoding="utf-8") as f:
            # Only with the iptables loop, which a test on loopback must not run.
            cls.iptables_only = o.registered_under(f.read(), "reconciler")
        live = o.LiveNmid(*ARGS)
        cls.addClassCleanup(live.stop)
        live.start()
        # A miss, a hit (one upstream call) and a 404: request, upstream and NMI series.
        cls.tokens = [live.token(BOUND_POD_IP)[0], live.token(BOUND_POD_IP)[0],
                      live.token(UNBOUND_POD_IP)[0]]
        cls.readyz = o.get(live.probe_port, "/readyz")[1]
        status, body = o.get(live.metrics_port, "/metrics")
        assert status == 200, (status, body)
        cls.samples, cls.types = o.parse_exposition(body)

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

    def test_metrics_named_in_descriptions_exist(self):
        """Names in panel descriptions and alert annotations (prose, not queries): exported, or
        registered by the daemon in a mode this test does not run (kubelet, pod watch, ...)."""
        registered = set()
        for path in glob.glob(os.path.join(d.ROOT, "daemon", "**", "*.cpp"), recursive=True):
            with open(path, encoding="utf-8") as f:
                registered |= set(re.findall(r'"((?:nmid|aadpodidentity)_\w+)"', f.read()))
        self.assertIn("nmid_kubelet_pod_read_failures_total", self.mentioned)
        for name in sorted(self.mentioned):
            with self.subTest(name):
                self.assertTrue(name in self.samples or name in registered)

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
