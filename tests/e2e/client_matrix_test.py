#!/usr/bin/python3
"""nmid end-to-end client matrix: every SDK client of tests/e2e/clients (contract: clients/base.py)
runs unmodified inside the bound pod of a node (fixture.Node: namespaces, real iptables DNAT,
imds-emulator) and must get, through nmid, the token of the identity that pod is bound to:
without a selector, with each selector it can send, through its DefaultAzureCredential chain,
and through a 429 and a 503 answered by nmid first (the SDK retries by itself).

Usage: client_matrix_test.py BIN_DIR GROUP [-v]
  BIN_DIR: directory with nmid and imds-emulator (the build's bin/);
  GROUP:   client.<name> for one client (ctest runs each as e2e.client.<name>), or "all".
Clients install into dirname(BIN_DIR) (or $NMID_E2E_CLIENTS_DIR), once per lock file content.
Exits 77 (ctest: skipped) when not root, or when every test skipped (a client's toolchain is
missing: the skip message names what to install).

One topology per client (the emulator and rules are shared by its cases); each case starts its
own nmid (empty cache, zeroed metrics) after resetting the emulator's counters and faults.
"""

import base64
import json
import math
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "clients"))

import e2e_test  # noqa: E402
import fixture  # noqa: E402
from base import ClientUnavailable  # noqa: E402
from fixture import (KV_CLIENT_ID, KV_OBJECT_ID, KV_WRITER_CLIENT_ID, KV_WRITER_OBJECT_ID,  # noqa: E402
                     KV_WRITER_RESOURCE_ID, RESOURCE)
from nslib import metric_sum  # noqa: E402
import python_clients  # noqa: E402

try:  # the JavaScript, Java and Go clients (another branch may not have landed yet)
    import other_clients  # noqa: E402
    OTHER_CLIENTS = list(other_clients.CLIENTS)
    OTHER_EXPECTED_FAILURES = dict(getattr(other_clients, "EXPECTED_FAILURES", {}))
except ModuleNotFoundError as e:
    if e.name != "other_clients":  # the module is there but broken: say so
        raise
    OTHER_CLIENTS, OTHER_EXPECTED_FAILURES = [], {}

CLIENTS = list(python_clients.CLIENTS) + OTHER_CLIENTS
# The bound pod has two identities (fixture.Node(second_identity=True)): kv-reader, which nmid
# serves when a request names none, and kv-writer, which every selector names: a client that gets
# kv-writer's token has sent the selector, and nmid honoured it.
READER = (KV_CLIENT_ID, KV_OBJECT_ID)
WRITER = (KV_WRITER_CLIENT_ID, KV_WRITER_OBJECT_ID)
SELECTOR_ARGS = {
    "none": [],
    "client_id": ["--client-id", KV_WRITER_CLIENT_ID],
    "object_id": ["--object-id", KV_WRITER_OBJECT_ID],
    "resource_id": ["--resource-id", KV_WRITER_RESOURCE_ID],
}
# nmid tries IMDS this many times per fetch (TokenCacheSettings::max_attempts,
# include/nmid/config/settings.hpp) before it answers the pod with IMDS's error: a fault script
# this long makes nmid answer one 429 or 503, and IMDS answers the SDK's retry.
NMID_UPSTREAM_ATTEMPTS = 5
# SDKs that ignore Retry-After. msrestazure (azure-cli 2.45, azure_active_directory.py
# _retrieve_token_from_imds_with_retry) waits a random one of the first `retry` slots of 0.1 s
# doubling (0.1, 0.3, 0.7, ... 409.5 s): its retries fall inside nmid's 5 s negative window and
# the wait after it can be minutes (one e2e run took over az_client.py's 45 s so). With only
# IMDS's 1 s Retry-After as the window, az retries past it within its first few slots (seconds).
IGNORES_RETRY_AFTER = {"azure-cli"}
CLIENT_TIMEOUT = 150  # one client run, SDK retries included (the CLI starts Python five times)
# Extra token resources a client asks nmid for besides --resource (az login's management token).
EXTRA_RESOURCES = {"azure-cli": 1}
# Cases where the SDK is known not to succeed, with the reason (from the SDK's source):
# {(client name, case): (a regex of what the client prints, the status nmid answered it or
# None when the client never asked nmid, why)}; case: mi_<selector>, default_none,
# default_client_id, retry_429, retry_503. A client module may add its own as EXPECTED_FAILURES.
EXPECTED_FAILURES = {
    # `az login --identity --username X` (azure-cli 2.45, azure/cli/core/_profile.py
    # login_with_managed_identity) does not know whether X is a client or an object id: it asks
    # IMDS with client_id=X and takes it for an object id only on IMDS's "400 Bad Request".
    # nmid answers an identity it does not know with NMI's 404 (what NMI-era clients expect),
    # which msrestazure's MSIAuthentication retries as IMDS's "updating" 404, 12 times with
    # random waits of up to minutes: az gives up, or az_client.py gives up on az (AZ_TIMEOUT).
    # An object id through the CLI therefore fails against nmid.
    ("azure-cli", "mi_object_id"): ("MSI endpoint is not responding|still retrying after", 404,
                                    "az sniffs ids by IMDS's 400"),
    **OTHER_EXPECTED_FAILURES,
}


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class ClientCase(unittest.TestCase):
    """The cases of one client (set by client_case); one node for all of them."""

    client = None
    argv = None
    node = None
    unavailable = None

    @classmethod
    def setUpClass(cls):
        build_dir = os.environ.get("NMID_E2E_CLIENTS_DIR") or os.path.dirname(e2e_test.BIN_DIR)
        cls.unavailable = None
        try:
            cls.argv = cls.client.prepare(build_dir)
        except ClientUnavailable as e:
            # Skipped case by case (not the class): ctest then sees every test skipped (77).
            cls.unavailable = f"{cls.client.name}: {e}"
            return
        cls.node = fixture.Node(e2e_test.BIN_DIR, second_identity=True)
        try:
            cls.node.start()
        except BaseException:
            cls.node.destroy()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.node is not None:
            cls.node.destroy()

    def setUp(self):
        if self.unavailable:
            self.skipTest(self.unavailable)
        self.node.emulator_reset()
        self.nmid = None

    def start_nmid(self, extra=()):
        self.nmid = self.node.start_nmid(extra=list(extra))
        self.procs_to_dump = [self.node.emulator, self.nmid]
        self.addCleanup(self.stop_nmid, self.nmid)
        return self.nmid

    def stop_nmid(self, proc):
        if proc.alive():
            proc.signal(signal.SIGTERM)
            proc.wait(timeout=15)

    # ---- running the client and checking what it got ---------------------------------------

    def run_client(self, mode, selector="none"):
        argv = [*self.argv, "--mode", mode, *SELECTOR_ARGS[selector], "--resource", RESOURCE]
        t0 = time.monotonic()
        cp = self.node.run_client(self.node.bound, argv, timeout=CLIENT_TIMEOUT)
        self.elapsed = time.monotonic() - t0
        return cp

    def assert_client_ok(self, cp):
        self.assertEqual(cp.returncode, 0, f"{self.client.name} failed:\n{cp.stdout}\n{cp.stderr}")
        lines = cp.stdout.strip().splitlines()
        self.assertTrue(lines, f"no output:\n{cp.stderr}")
        got = json.loads(lines[-1])
        self.assertEqual(set(got), {"token", "expires_on"}, got)
        return got

    def nmid_token_requests(self, **labels):
        return metric_sum(self.node.metrics(self.nmid), "nmid_requests_total", route="token", **labels)

    def assert_token_from_nmid(self, got, identity, upstream_failures=0):
        """The client's token is `identity`'s (client id, object id), and the one nmid holds:
        fetched from IMDS by nmid (once per resource the client asked for), served by nmid."""
        claims = jwt_claims(got["token"])
        self.assertEqual((claims.get("appid"), claims.get("oid")), identity, claims)
        self.assertEqual(claims.get("aud"), RESOURCE, claims)
        status, body, _ = self.node.token(self.node.bound, client_id=identity[0])
        self.assertEqual(status, 200, body)
        held = json.loads(body)
        self.assertEqual(got["token"], held["access_token"])
        # msal-based SDKs (msal-node) recompute expires_on as their request's start + IMDS's
        # remaining lifetime: never later than nmid's, earlier by at most the run's duration.
        early = int(held["expires_on"]) - int(got["expires_on"])
        self.assertTrue(0 <= early <= math.ceil(self.elapsed) + 1,
                        f"expires_on {got['expires_on']} vs nmid's {held['expires_on']}")
        resources = 1 + EXTRA_RESOURCES.get(self.client.name, 0)
        stats = self.node.emulator_stats()
        fetched = {k: n for k, n in stats["token_requests_by_client_id"].items() if n}
        self.assertEqual(fetched, {identity[0]: resources + upstream_failures}, stats)
        self.assertEqual(self.nmid_token_requests(status="200", cache="miss"), resources)
        # The client's own request(s) and curl's: nmid answered them all (curl's from cache).
        self.assertGreaterEqual(self.nmid_token_requests(status="200"), resources + 1)
        return stats

    def expect_known_failure(self, case, cp):
        expected = EXPECTED_FAILURES.get((self.client.name, case))
        if expected is None:
            return False
        outcome, nmid_status, why = expected
        self.assertNotEqual(cp.returncode, 0, f"{case} now succeeds; drop it from "
                                              f"EXPECTED_FAILURES ({why})")
        self.assertRegex(cp.stdout + cp.stderr, outcome)
        if nmid_status is None:
            self.assertEqual(self.nmid_token_requests(), 0)
        else:
            self.assertGreaterEqual(self.nmid_token_requests(status=str(nmid_status)), 1)
            self.assertEqual(self.nmid_token_requests(status="200"), 0)
        print(f"\n  {self.client.name} {case}: fails as expected ({why})", file=sys.stderr)
        return True

    # ---- the cases --------------------------------------------------------------------------

    def check_mi(self, selector):
        if selector not in self.client.selectors:
            self.skipTest(f"{self.client.name} {self.client.version} cannot send {selector}")
        self.start_nmid()
        cp = self.run_client("mi", selector)
        if self.expect_known_failure(f"mi_{selector}", cp):
            return
        self.assert_token_from_nmid(self.assert_client_ok(cp), READER if selector == "none" else WRITER)

    def test_mi_no_selector(self):
        self.check_mi("none")

    def test_mi_client_id(self):
        self.check_mi("client_id")

    def test_mi_object_id(self):
        self.check_mi("object_id")

    def test_mi_resource_id(self):
        self.check_mi("resource_id")

    def check_default(self, selector):
        if not self.client.default_chain:
            self.skipTest(f"{self.client.name} has no DefaultAzureCredential-like chain")
        self.start_nmid()
        cp = self.run_client("default", selector)
        if self.expect_known_failure(f"default_{selector}", cp):
            return
        got = self.assert_client_ok(cp)
        # Before its token request, the chain's managed-identity credential probed IMDS (every
        # SDK of the matrix does, from its source: Python 1.27 with a token request, the others
        # with a header-less request nmid answers 400): a request more than the token alone.
        asked = int(self.nmid_token_requests())
        self.assertGreaterEqual(asked, 2, "the chain did not probe IMDS")
        print(f"\n  {self.client.name}: the chain sent nmid {asked} token requests", file=sys.stderr)
        self.assert_token_from_nmid(got, READER if selector == "none" else WRITER)

    def test_default_chain_no_selector(self):
        self.check_default("none")

    def test_default_chain_client_id(self):
        self.check_default("client_id")

    def check_retry(self, status, error):
        """IMDS fails nmid's first fetch NMID_UPSTREAM_ATTEMPTS times: nmid answers `status`,
        then the SDK's own retry gets the token nmid fetches next. (azure-identity retries
        404/410/429/5xx honouring Retry-After: _credentials/imds.py PIPELINE_SETTINGS; the
        Azure CLI's msrestazure _retrieve_token_from_imds_with_retry, up to 12 times.)"""
        # nmid's defaults: the failure is remembered for --token-negative-ttl (5 s) and nmid's
        # Retry-After says so, so an SDK with few retries (msal-node: 3) waits past the window
        # instead of spending its retries inside it (it gave up there when nmid said 1 s).
        # An SDK that ignores Retry-After runs without nmid's own window (IMDS's 1 s remains).
        self.start_nmid(extra=["--token-negative-ttl=0"]
                        if self.client.name in IGNORES_RETRY_AFTER else [])
        fault = {"status": status}
        if status == 429:
            fault["retry_after"] = 1  # what IMDS sends
        self.assertEqual(self.node.emulator_faults([fault] * NMID_UPSTREAM_ATTEMPTS),
                         NMID_UPSTREAM_ATTEMPTS)
        selector = "client_id" if "client_id" in self.client.selectors else "none"
        cp = self.run_client("mi", selector)
        answered = int(self.nmid_token_requests(status=str(status)))
        self.assertGreaterEqual(answered, 1, f"nmid never answered {status}: the SDK saw no "
                                             f"{error}\n{self.nmid.log()[-3000:]}")
        if self.expect_known_failure(f"retry_{status}", cp):
            return
        got = self.assert_client_ok(cp)
        stats = self.assert_token_from_nmid(got, READER if selector == "none" else WRITER,
                                            upstream_failures=NMID_UPSTREAM_ATTEMPTS)
        self.assertEqual((stats["faults_injected"], stats["pending_faults"]),
                         (NMID_UPSTREAM_ATTEMPTS, 0), stats)
        print(f"\n  {self.client.name}: nmid answered {status} x{answered}, the SDK retried and "
              f"succeeded after {self.elapsed:.1f}s", file=sys.stderr)

    def test_retry_after_429_too_many_requests(self):
        self.check_retry(429, "too_many_requests")

    def test_retry_after_503_temporarily_unavailable(self):
        self.check_retry(503, "temporarily_unavailable")


def client_case(client):
    name = "Client_" + "".join(c if c.isalnum() else "_" for c in client.name)
    return type(name, (ClientCase,), {"client": client})


GROUPS = {f"client.{c.name}": [client_case(c)] for c in CLIENTS}


if __name__ == "__main__":
    if sys.argv[1:] == ["--list-groups"]:  # for tests/e2e/CMakeLists.txt
        print("\n".join(GROUPS))
        sys.exit(0)
    e2e_test.GROUPS.clear()
    e2e_test.GROUPS.update(GROUPS)
    sys.exit(e2e_test.main(sys.argv))
