#!/usr/bin/python3
"""nmid end-to-end suite: network namespaces for a node, three pods and a metadata host, real
iptables rules (managed by nmid inside the node namespace), imds-emulator on 169.254.169.254:80
of the metadata host, and real clients (curl, Node @azure/identity; the SDK client matrix, Python
included, is client_matrix_test.py).

Usage: e2e_test.py BIN_DIR GROUP [-v]
  BIN_DIR: directory with nmid and imds-emulator (the build's bin/);
  GROUP:   one of GROUPS below (ctest runs each as e2e.<GROUP>), or "all".
Exits 77 (ctest: skipped) when not root or network namespaces are unavailable.
Environment: NMID_E2E_KEEP_LOGS=1 keeps the work directory (logs, fixtures) of each node.

Every test builds its own topology (about 0.3 s), so no rule, cache or counter is shared.
"""

import json
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fixture  # noqa: E402
import nslib  # noqa: E402
from observability_check import IptablesMetricsExported  # noqa: E402
from fixture import CLEAN_ENV, KV_CLIENT_ID, NODE_CLIENT_ID, RESOURCE  # noqa: E402
from nslib import NODE_IP, metric_sum, wait_until  # noqa: E402

BIN_DIR = None
SYSTEM_PYTHON = "/usr/bin/python3"
RECONCILE_INTERVAL = 1  # --ipt-update-interval-sec in these tests
# Restoring a deleted rule takes one interval plus an iptables-save and an iptables-restore.
RESTORE_DEADLINE = RECONCILE_INTERVAL + 2.0


class NodeTest(unittest.TestCase):
    """A fresh node per test: topology, emulator, fixtures; nmid is started by the test."""

    backend = "auto"
    target = "127.0.0.1"

    def setUp(self):
        self.node = fixture.Node(BIN_DIR)
        self.addCleanup(self.node.destroy)
        self.node.start()
        self.topo = self.node.topo

    def start_nmid(self, **kwargs):
        kwargs.setdefault("backend", self.backend)
        kwargs.setdefault("target", self.target)
        return self.node.start_nmid(**kwargs)

    def effective_backend(self):
        """The backend holding nmid's rules (the one asked for, or what auto picked)."""
        if self.backend != "auto":
            return self.backend
        found = [b for b in ("nft", "legacy") if any("aad-metadata" in r for r in self.node.nat_rules(b))]
        self.assertEqual(len(found), 1, f"rules in {found}")
        return found[0]

    def assert_rules(self, backend, target):
        self.assertEqual(self.node.nat_rules(backend), self.node.expected_rules(target))
        other = "legacy" if backend == "nft" else "nft"
        self.assertFalse([r for r in self.node.nat_rules(other) if "aad-metadata" in r],
                         f"rules leaked into the {other} backend")

    def assert_no_rules(self):
        for b in ("nft", "legacy"):
            self.assertFalse([r for r in self.node.nat_rules(b) if "aad-metadata" in r], b)

    def assert_token_json(self, body, client_id=None):
        tok = json.loads(body)
        self.assertTrue(tok["access_token"])
        self.assertEqual(tok["resource"], RESOURCE)
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertRegex(tok["expires_on"], r"^\d+$")
        self.assertGreater(int(tok["expires_on"]), time.time())
        if client_id is not None:
            self.assertEqual(tok["client_id"], client_id)
        return tok

    def upstream_calls(self, client_id=KV_CLIENT_ID):
        return self.node.emulator_stats()["token_requests_by_client_id"].get(client_id, 0)

    def assert_fails_without_reaching_imds(self, ns):
        status, body, rc = self.node.token(ns, timeout=2, connect_timeout=1)
        self.assertEqual(status, 0, f"got an answer: {status} {body}")
        # 7: connection refused (DNAT to a port without listener), 28: timeout.
        self.assertIn(rc, (7, 28), f"curl exit {rc}")


    def check_sigterm_then_cleanup(self, nmid, cleanup_backend):
        """Check 7: SIGTERM exits 0 and leaves the rules (pods fail closed, nothing reaches
        IMDS); `nmid cleanup --iptables-backend=<cleanup_backend>` removes them."""
        backend = self.effective_backend()
        nmid.signal(signal.SIGTERM)
        self.assertEqual(nmid.wait(timeout=15), 0, nmid.log()[-3000:])
        self.assert_rules(backend, self.target)
        self.node.add_mdh_syn_counter()
        self.node.emulator_reset()
        self.assert_fails_without_reaching_imds(self.node.bound)
        self.assertEqual(self.node.emulator_stats()["token_requests"], 0)
        self.assertEqual(self.node.mdh_syn_count(), 0)
        cp = self.node.cleanup_cmd(cleanup_backend)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assert_no_rules()
        # After an uninstall the pod reaches IMDS directly: proof the DNAT is really gone.
        status, body, _ = self.node.token(self.node.bound, client_id=KV_CLIENT_ID)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.upstream_calls(), 1)
        self.assertGreater(self.node.mdh_syn_count(), 0)
        # A second cleanup finds nothing to remove and still succeeds (uninstall jobs rerun).
        cp = self.node.cleanup_cmd(cleanup_backend)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)


# ---- checks 1, 4, 5: requests through the DNAT, for each backend and target ----------------

class RequestsBase(IptablesMetricsExported, NodeTest):
    """Curl from the pods through nmid's own rules (one backend, one DNAT target)."""

    def setUp(self):
        super().setUp()
        self.nmid = self.start_nmid()

    def token_requests_seen_by_nmid(self, **labels):
        return metric_sum(self.node.metrics(self.nmid), "nmid_requests_total", route="token", **labels)

    def test_rules_installed_exactly_and_ready(self):
        self.assert_rules(self.backend, self.target)
        status, body, _ = self.node.readyz(self.nmid)
        self.assertEqual(status, 200, body)
        self.assertIn("iptables", body)
        localnet = self.topo.read_sysctl(self.topo.node, "net.ipv4.conf.all.route_localnet")
        # --set-route-localnet only when the target is on loopback: a node IP needs nothing.
        self.assertEqual(localnet, "1" if self.target.startswith("127.") else "0")

    def test_bound_pod_gets_its_token_from_nmid(self):
        status, body, _ = self.node.token(self.node.bound)
        self.assertEqual(status, 200, body)
        first = self.assert_token_json(body)
        self.assertEqual(self.upstream_calls(), 1)
        status, body, _ = self.node.token(self.node.bound)
        self.assertEqual(status, 200, body)
        # Same token, no second upstream call: the answer came from nmid's cache, not IMDS.
        self.assertEqual(json.loads(body)["access_token"], first["access_token"])
        self.assertEqual(self.upstream_calls(), 1)
        self.assertEqual(self.token_requests_seen_by_nmid(status="200", cache="miss"), 1)
        self.assertEqual(self.token_requests_seen_by_nmid(status="200", cache="hit"), 1)

    def test_unbound_pod_gets_nmi_status(self):
        status, body, _ = self.node.token(self.node.unbound)
        self.assertEqual(status, 404, body)
        err = json.loads(body)
        self.assertEqual(set(err), {"error", "error_description"})
        self.assertIn("default/unbound", err["error_description"])
        self.assertEqual(self.node.emulator_stats()["token_requests"], 0)
        self.assertEqual(self.token_requests_seen_by_nmid(status="404"), 1)

    def test_excepted_pod_gets_imds_own_answer(self):
        for n in (1, 2):
            status, body, _ = self.node.token(self.node.excepted)
            self.assertEqual(status, 200, body)
            # The VM's own (system-assigned) identity, which nmid never serves itself; one IMDS
            # call per request: proxied, not cached.
            self.assert_token_json(body, client_id=NODE_CLIENT_ID)
            self.assertEqual(self.upstream_calls(NODE_CLIENT_ID), n)
        self.assertEqual(self.token_requests_seen_by_nmid(status="200"), 2)

    def test_node_namespace_is_not_redirected(self):
        status, body, _ = self.node.token(self.topo.node, client_id=KV_CLIENT_ID)
        self.assertEqual(status, 200, body)
        # IMDS's own answer (the emulator counted it) ...
        self.assert_token_json(body, client_id=KV_CLIENT_ID)
        self.assertEqual(self.upstream_calls(), 1)
        # ... and nmid never saw it: OUTPUT traffic is not redirected.
        self.assertEqual(self.token_requests_seen_by_nmid(), 0)

    def test_sigterm_keeps_the_rules_and_nmid_cleanup_removes_them(self):
        self.check_sigterm_then_cleanup(self.nmid, self.backend)

    def test_deleted_rules_are_restored_within_the_interval(self):
        b = self.backend
        expected = self.node.expected_rules(self.target)
        damage = [
            ("jump removed from PREROUTING", [["-t", "nat", "-D", "PREROUTING", "-j", "aad-metadata"]]),
            ("DNAT rule removed", [["-t", "nat", "-D", "aad-metadata", "1"]]),
            ("chain flushed and deleted", [["-t", "nat", "-D", "PREROUTING", "-j", "aad-metadata"],
                                           ["-t", "nat", "-F", "aad-metadata"],
                                           ["-t", "nat", "-X", "aad-metadata"]]),
        ]
        for what, commands in damage:
            with self.subTest(what):
                for args in commands:
                    self.node.ipt(b, *args)
                self.assertNotEqual(self.node.nat_rules(b), expected)
                t0 = time.monotonic()
                wait_until(lambda: self.node.nat_rules(b) == expected, RESTORE_DEADLINE,
                           f"rules restored after: {what}")
                restored_after = time.monotonic() - t0
                self.assertLessEqual(restored_after, RESTORE_DEADLINE)
                before = self.token_requests_seen_by_nmid()
                status, body, _ = self.node.token(self.node.bound)
                self.assertEqual(status, 200, body)
                self.assertEqual(self.token_requests_seen_by_nmid(), before + 1)
        syncs = metric_sum(self.node.metrics(self.nmid), "nmid_iptables_applies_total")
        self.assertGreaterEqual(syncs, 1 + len(damage))


def _requests_case(backend, target):
    name = f"Requests_{backend}_{'loopback' if target.startswith('127.') else 'nodeip'}"
    return type(name, (RequestsBase,), {"backend": backend, "target": target})


Requests_nft_loopback = _requests_case("nft", "127.0.0.1")
Requests_nft_nodeip = _requests_case("nft", NODE_IP)
Requests_legacy_loopback = _requests_case("legacy", "127.0.0.1")
Requests_legacy_nodeip = _requests_case("legacy", NODE_IP)


# ---- check 5 (auto): backend detection as kube-proxy's wrapper does --------------------------

class AutoBackend(NodeTest):

    def test_auto_picks_legacy_when_the_kubelet_chains_are_there(self):
        self.node.ipt("legacy", "-t", "mangle", "-N", "KUBE-KUBELET-CANARY")
        self.start_nmid(backend="auto")
        self.assert_rules("legacy", self.target)
        status, body, _ = self.node.token(self.node.bound)
        self.assertEqual(status, 200, body)

    def test_auto_picks_nft_on_the_hint_even_with_more_legacy_rules(self):
        self.node.ipt("nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT")
        for i in range(3):  # counting rules only (no target): they change no traffic
            self.node.ipt("legacy", "-A", "INPUT", "-m", "comment", "--comment", f"e2e-{i}")
        self.start_nmid(backend="auto")
        self.assert_rules("nft", self.target)
        status, body, _ = self.node.token(self.node.bound)
        self.assertEqual(status, 200, body)


# ---- check 2: unmodified SDK clients (the matrix: client_matrix_test.py) -------------------

class SdkBase(NodeTest):
    """A node whose tests run an SDK client program in a pod (workload_identity_test.py)."""

    def run_sdk_in(self, pod, argv):
        """Runs an SDK client in `pod` with fixture.CLEAN_ENV; returns its last stdout line's JSON."""
        cp = self.node.run_client(pod, argv)
        self.assertEqual(cp.returncode, 0, f"{argv[0]} failed:\n{cp.stdout}\n{cp.stderr}")
        return json.loads(cp.stdout.strip().splitlines()[-1])


# ---- checks 3 and 7: fail-closed lifecycle -------------------------------------------------

class FailClosed(NodeTest):

    def test_kill9_pods_fail_and_nothing_reaches_imds_until_a_new_nmid_serves(self):
        nmid = self.start_nmid()
        status, body, _ = self.node.token(self.node.bound)
        self.assertEqual(status, 200, body)
        backend = self.effective_backend()
        self.node.kill9(nmid)
        self.node.add_mdh_syn_counter()
        self.node.emulator_reset()
        self.assert_rules(backend, self.target)
        for ns in (self.node.bound, self.node.unbound, self.node.excepted):
            self.assert_fails_without_reaching_imds(ns)
        stats = self.node.emulator_stats()
        self.assertEqual((stats["token_requests"], stats["rejected_requests"], stats["instance_requests"]),
                         (0, 0, 0), stats)
        self.assertEqual(self.node.mdh_syn_count(), 0, "a pod's packet reached the metadata host")
        again = self.start_nmid()
        status, body, _ = self.node.token(self.node.bound)
        self.assertEqual(status, 200, body)
        self.assertEqual(metric_sum(self.node.metrics(again), "nmid_requests_total", status="200"), 1)
        self.assertEqual(self.node.mdh_syn_count(), 0)

    def _early_connection(self, name):
        """A connection from the bound pod to the metadata host, opened while no rule exists
        (a fresh node); its request is sent when the returned `go` callable is called, and
        its result read with the returned `result` callable."""
        # A real node tracks connections before nmid starts (kube-proxy's rules need conntrack);
        # a new namespace does not until some rule uses it, and an untracked flow would meet
        # the DNAT anyway. A rule like kube-proxy's makes the node namespace track flows.
        self.topo.nsexec(self.topo.node, ["iptables-nft", "-A", "FORWARD", "-m", "conntrack",
                                          "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"])
        w = self.topo.workdir
        connected, go, result_file = f"{w}/{name}.connected", f"{w}/{name}.go", f"{w}/{name}.json"
        holder = self.topo.spawn(self.node.bound, name, [
            SYSTEM_PYTHON, os.path.join(HERE, "hold_connection.py"), nslib.token_url(RESOURCE),
            connected, go, result_file], env=CLEAN_ENV)
        wait_until(lambda: os.path.exists(connected) or not holder.alive(), 10,
                   "the connection to the metadata host")
        self.assertTrue(os.path.exists(connected), holder.log())

        def send():
            open(go, "w").close()
            holder.wait(timeout=20)
            with open(result_file) as f:
                return json.load(f)
        return send

    def test_connection_opened_before_the_rules_keeps_reaching_imds_without_conntrack_deletion(self):
        """The gap --enable-conntrack-deletion closes: an established flow is not NATed."""
        self.assert_no_rules()
        send = self._early_connection("early-kept")
        self.node.emulator_reset()
        nmid = self.start_nmid(backend="nft", extra=["--enable-conntrack-deletion=false"])
        result = send()
        self.assertEqual(self.node.emulator_stats()["token_requests"], 1, result)
        self.assertEqual(metric_sum(self.node.metrics(nmid), "nmid_requests_total"), 0)

    def test_conntrack_deletion_cuts_connections_opened_before_the_rules(self):
        self.assert_no_rules()
        send = self._early_connection("early-cut")
        self.node.emulator_reset()
        nmid = self.start_nmid(backend="nft", extra=["--enable-conntrack-deletion"])
        wait_until(lambda: "conntrack: deleted" in nmid.log(), 10, "nmid's conntrack line")
        self.assertIn("conntrack: deleted 1 flow(s) to 169.254.169.254:80", nmid.log())
        result = send()
        self.assertNotEqual(result.get("status"), 200, result)
        stats = self.node.emulator_stats()
        self.assertEqual((stats["token_requests"], stats["rejected_requests"]), (0, 0), stats)
        # A new connection from the same pod is nmid's.
        status, body, _ = self.node.token(self.node.bound)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.node.emulator_stats()["token_requests"], 1)  # nmid's own fetch

    def test_start_is_fail_closed_503_until_ready(self):
        w = self.topo.workdir
        os.rename(f"{w}/pods.json", f"{w}/pods.later")
        self.node.add_mdh_syn_counter()
        nmid = self.start_nmid(wait_ready=False)
        wait_until(lambda: self.node.readyz(nmid)[0] == 503, 10, "nmid answering /readyz 503")
        # Rules went in before any pod was read: the pod gets nmid's 503, not IMDS.
        self.assert_rules(self.effective_backend(), self.target)
        headers = os.path.join(w, "headers.txt")
        cp = self.topo.nsexec(self.node.bound, ["curl", "-sS", "-m", "3", "-D", headers, "-o", "/dev/null",
                                                "-w", "%{http_code}", "-H", "Metadata: true",
                                                nslib.token_url(RESOURCE)], check=False)
        self.assertEqual(cp.stdout, "503", cp.stderr)
        self.assertRegex(open(headers).read(), r"(?im)^retry-after: *\d+")
        self.assertEqual(self.node.emulator_stats()["token_requests"], 0)
        self.assertEqual(self.node.mdh_syn_count(), 0)
        os.rename(f"{w}/pods.later", f"{w}/pods.json")
        self.node.wait_ready(nmid)
        status, body, _ = self.node.token(self.node.bound)
        self.assertEqual(status, 200, body)

    def test_sigterm_keeps_the_rules_and_nmid_cleanup_removes_them(self):
        self.check_sigterm_then_cleanup(self.start_nmid(), "auto")

    def test_cleanup_rules_on_exit(self):
        nmid = self.start_nmid(extra=["--cleanup-rules-on-exit"])
        self.effective_backend()
        nmid.signal(signal.SIGTERM)
        self.assertEqual(nmid.wait(timeout=15), 0, nmid.log())
        self.assert_no_rules()


# ---- check 6: restart under continuous load ------------------------------------------------

class Restart(NodeTest):
    HANDOVERS = 4

    def test_restart_under_load_loses_no_request(self):
        # Connections still in a closing SO_REUSEPORT listener's accept queue are reset unless
        # the kernel migrates them to the other listener (Linux >= 5.14). A netns-wide sysctl,
        # set here in the node namespace as the node's own setting would be.
        if os.path.exists("/proc/sys/net/ipv4/tcp_migrate_req"):
            self.topo.sysctl(self.topo.node, "net.ipv4.tcp_migrate_req", "1")
        ports = [(8085, 9095), (8086, 9096)]
        old = self.start_nmid(probe_port=ports[0][0], metrics_port=ports[0][1])
        backend = self.effective_backend()
        w = self.topo.workdir
        status_file, stop_file = f"{w}/load.json", f"{w}/load.stop"
        load = self.topo.spawn(self.node.bound, "load", [
            SYSTEM_PYTHON, os.path.join(HERE, "load_client.py"), nslib.token_url(RESOURCE),
            status_file, stop_file, "3", "1"], env=CLEAN_ENV)

        def progress():
            try:
                with open(status_file) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return {"ok": 0, "failed": 0, "retried_stale": 0, "errors": []}

        def more_requests(n):
            base = progress()["ok"]
            wait_until(lambda: progress()["ok"] >= base + n or not load.alive(), 20, f"{n} more requests")
            self.assertTrue(load.alive(), load.log())

        more_requests(100)
        served = []
        for i in range(self.HANDOVERS):
            probe, metrics = ports[(i + 1) % 2]
            new = self.start_nmid(probe_port=probe, metrics_port=metrics)
            # Both listeners share the port: the new one takes connections before the old goes.
            wait_until(lambda: metric_sum(self.node.metrics(new), "nmid_requests_total") >= 10, 10,
                       "the new nmid serving")
            served.append(metric_sum(self.node.metrics(old), "nmid_requests_total", status="200"))
            old.signal(signal.SIGTERM)
            self.assertEqual(old.wait(timeout=15), 0, old.log()[-3000:])
            self.assert_rules(backend, self.target)
            old = new
            more_requests(100)
        open(stop_file, "w").close()
        load.wait(timeout=15)
        result = progress()
        self.assertEqual(result["failed"], 0, json.dumps(result, indent=1))
        self.assertGreater(result["ok"], 100 * (self.HANDOVERS + 1))
        self.assertTrue(all(s > 0 for s in served), served)
        # One upstream fetch per nmid at most (a new nmid starts with an empty cache).
        self.assertLessEqual(self.upstream_calls(), self.HANDOVERS + 1)
        print(f"\n  restart: {result['ok']} requests, 0 failed, {result['retried_stale']} stale "
              f"keep-alive retries, {self.HANDOVERS} handovers", file=sys.stderr)


    def test_new_nmid_starts_on_the_ports_the_old_one_holds(self):
        """A DaemonSet surge rollout starts the new pod with the same flags: every listener
        (token, probe, metrics) must bind next to the old nmid's, not fail."""
        old = self.start_nmid()
        new = self.start_nmid(wait_ready=False)
        wait_until(lambda: "listening on" in new.log() or not new.alive(), 10,
                   "the new nmid listening")
        self.assertTrue(new.alive(), new.log()[-3000:])
        old.signal(signal.SIGTERM)
        self.assertEqual(old.wait(timeout=15), 0, old.log()[-3000:])
        self.node.wait_ready(new)  # the probe port is the new nmid's alone now
        status, body, _ = self.node.token(self.node.bound)
        self.assertEqual(status, 200, body)
        new.signal(signal.SIGTERM)
        self.assertEqual(new.wait(timeout=15), 0, new.log()[-3000:])

    def test_connection_open_at_sigterm_is_served(self):
        """A connection accepted before SIGTERM whose request arrives after it is in flight:
        it gets its answer within --shutdown-grace, not a close without response."""
        nmid = self.start_nmid()
        w = self.topo.workdir
        connected, go, result_file = f"{w}/held.connected", f"{w}/held.go", f"{w}/held.json"
        holder = self.topo.spawn(self.node.bound, "holder", [
            SYSTEM_PYTHON, os.path.join(HERE, "hold_connection.py"), nslib.token_url(RESOURCE),
            connected, go, result_file], env=CLEAN_ENV)
        wait_until(lambda: os.path.exists(connected) or not holder.alive(), 10, "the held connection")
        wait_until(lambda: metric_sum(self.node.metrics(nmid), "nmid_connections_active") >= 1, 10,
                   "nmid to accept the held connection")
        nmid.signal(signal.SIGTERM)
        # Shutdown has begun once the listener reports not accepting (or nmid is gone).
        wait_until(lambda: self.node.readyz(nmid)[0] != 200, 10, "nmid to stop accepting")
        open(go, "w").close()
        holder.wait(timeout=20)
        with open(result_file) as f:
            result = json.load(f)
        self.assertEqual(result.get("status"), 200, result)
        self.assertTrue(result["token"], result)
        self.assertEqual(nmid.wait(timeout=15), 0, nmid.log()[-3000:])


class Safety(unittest.TestCase):
    """The guards themselves (no namespace needed)."""

    def test_network_commands_cannot_run_outside_our_namespaces(self):
        nslib.self_check()


GROUPS = {
    "nft_loopback": [Requests_nft_loopback, Safety],
    "nft_nodeip": [Requests_nft_nodeip],
    "legacy_loopback": [Requests_legacy_loopback],
    "legacy_nodeip": [Requests_legacy_nodeip],
    "auto_backend": [AutoBackend],
    "fail_closed": [FailClosed],
    "restart": [Restart],
}


class LogDumpingResult(unittest.TextTestResult):
    """On a failure, prints the tails of the logs of the processes the test started."""

    def _dump(self, test):
        node = getattr(test, "node", None)
        if node is None:
            return
        # A test sharing its node with others (the client matrix) names its own processes.
        for p in getattr(test, "procs_to_dump", None) or node.topo.procs:
            self.stream.write(f"\n----- {p.name} (pid {p.pid}) log tail -----\n{p.log()[-4000:]}\n")

    def addError(self, test, err):
        super().addError(test, err)
        self._dump(test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._dump(test)


def main(argv):
    global BIN_DIR
    if len(argv) < 3 or (argv[2] not in GROUPS and argv[2] != "all"):
        print(__doc__ + "\ngroups: " + " ".join(GROUPS), file=sys.stderr)
        return 2
    BIN_DIR = os.path.abspath(argv[1])
    nslib.self_check()  # before anything touches the network
    why = nslib.skip_reason()
    if why:
        print(f"SKIP: {why}")
        return 77
    for exe in ("nmid", "imds-emulator"):
        if not os.access(os.path.join(BIN_DIR, exe), os.X_OK):
            print(f"{exe} not found in {BIN_DIR}", file=sys.stderr)
            return 1
    nslib.install_signal_cleanup()
    nslib.delete_leftovers()
    classes = [c for g in GROUPS.values() for c in g] if argv[2] == "all" else GROUPS[argv[2]]
    suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromTestCase(c) for c in classes)
    t0 = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, resultclass=LogDumpingResult).run(suite)
    print(f"e2e {argv[2]}: {time.monotonic() - t0:.1f}s")
    if result.wasSuccessful() and result.testsRun > 0 and len(result.skipped) == result.testsRun:
        return 77
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
