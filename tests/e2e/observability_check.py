"""The metrics only nmid's iptables loop exports (which the loopback test in tests/deploy cannot
run) checked against a live nmid that manages real rules: every such metric the Grafana
dashboard or the alert rules use must be in its /metrics."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy"))
import deploylib as d  # noqa: E402
import observability as o  # noqa: E402

DASHBOARD = os.path.join(d.DEPLOY, "grafana", "nmid.json")
RULES = os.path.join(d.DEPLOY, "prometheus", "nmid-rules.yaml")
DAEMON_METRICS = os.path.join(d.ROOT, "daemon", "app", "daemon_metrics.cpp")


def used_iptables_metrics():
    """Names the dashboard and rules select that only the iptables loop registers."""
    with open(DASHBOARD, encoding="utf-8") as f:
        exprs = [e for _, e in o.dashboard_exprs(json.load(f))]
    exprs += [r["expr"] for r in o.alert_rules(d.load_docs(RULES)[0])]
    used = set().union(*(o.metric_names(e) for e in exprs))
    with open(DAEMON_METRICS, encoding="utf-8") as f:
        return used & o.registered_under(f.read(), "reconciler")


class IptablesMetricsExported:
    """Mixed into a test class whose setUp starts self.nmid with --manage-iptables."""

    def test_iptables_metrics_the_dashboard_and_alerts_use_are_exported(self):
        used = used_iptables_metrics()
        self.assertIn("nmid_iptables_in_sync", used)
        exported = {name for name, _ in self.node.metrics(self.nmid)}
        self.assertEqual(used - exported, set(), "used by deploy/grafana or deploy/prometheus")
