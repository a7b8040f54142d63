"""End to end, IMDS 2023-07-01's contract through nmid's DNAT (issue 14): the answer's
`client_id` and `ext_expires_in`, `bypass_cache=true` from one pod a hundred times (at most one
extra upstream call per key per interval, another pod's token untouched),
`/metadata/identity/info`, and IMDS's `too_many_requests` with Retry-After.

Usage: imds_contract_test.py BIN_DIR GROUP (ctest runs it as e2e.imds_contract); as
e2e_test.py (root, exits 77 otherwise)."""

import json
import os
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import e2e_test  # noqa: E402
import nslib  # noqa: E402
from fixture import KV_CLIENT_ID, RESOURCE  # noqa: E402
from nslib import METADATA_IP, metric_sum  # noqa: E402

EMULATOR_TENANT = "e1e1e1e1-0000-4000-8000-00000000e1e1"  # imds-emulator's kTenantId
STORAGE = "https://storage.azure.com"
INFO_URL = f"http://{METADATA_IP}/metadata/identity/info?api-version=2018-02-01"


class ImdsContract(e2e_test.NodeTest):
    """The fixture's second pod (default/unbound) is bound to the same identity as the first,
    so two pods hold tokens of one identity for two resources (two cache keys)."""

    def setUp(self):
        super().setUp()
        w = self.topo.workdir
        with open(os.path.join(w, "pods.json")) as f:
            pods = json.load(f)
        pods["items"][1]["metadata"]["labels"]["aadpodidbinding"] = "kv-reader"
        with open(os.path.join(w, "pods.json"), "w") as f:
            json.dump(pods, f)
        self.nmid = self.start_nmid()  # --bypass-cache-min-interval: its default, 5 minutes

    def upstream_total(self):
        return self.node.emulator_stats()["token_requests"]

    def get(self, ns, resource, bypass=False):
        q = {"api-version": "2018-02-01", "resource": resource}
        if bypass:
            q["bypass_cache"] = "true"
        url = f"http://{METADATA_IP}/metadata/identity/oauth2/token?{urllib.parse.urlencode(q)}"
        status, body, _ = self.topo.http(ns, url, {"Metadata": "true"})
        self.assertEqual(status, 200, body)
        return body

    def test_answer_carries_client_id_and_ext_expires_in_after_nmi_fields(self):
        body = self.get(self.node.bound, RESOURCE)
        tok = self.assert_token_json(body, client_id=KV_CLIENT_ID)
        self.assertRegex(tok["ext_expires_in"], r"^\d+$")
        self.assertGreater(int(tok["ext_expires_in"]), 0)
        keys = list(json.loads(body, object_pairs_hook=lambda kv: dict(kv)).keys())
        self.assertEqual(keys, ["access_token", "refresh_token", "expires_in", "expires_on",
                                "not_before", "resource", "token_type", "client_id",
                                "ext_expires_in"])

    def test_bypass_cache_from_one_pod_a_hundred_times(self):
        other = json.loads(self.get(self.node.unbound, STORAGE))["access_token"]
        first = json.loads(self.get(self.node.bound, RESOURCE))["access_token"]
        self.assertEqual(self.upstream_total(), 2)
        tokens = set()
        for _ in range(100):
            tokens.add(json.loads(self.get(self.node.bound, RESOURCE, bypass=True))["access_token"])
        # One forced fetch for the key in the interval, served to every later request.
        self.assertEqual(self.upstream_total(), 3)
        self.assertEqual(len(tokens), 1, "a forced token, then the cache")
        self.assertNotIn(first, tokens)
        # The other pod's cached token (another key) is not disturbed.
        self.assertEqual(json.loads(self.get(self.node.unbound, STORAGE))["access_token"], other)
        self.assertEqual(self.upstream_total(), 3)
        m = self.node.metrics(self.nmid)
        self.assertEqual(metric_sum(m, "nmid_requests_total", route="token", cache="forced"), 1)
        # The other pod has its own allowance for its own key.
        self.get(self.node.unbound, STORAGE, bypass=True)
        self.assertEqual(self.upstream_total(), 4)

    def test_identity_info_answers_the_tenant_of_bound_pods_only(self):
        for _ in range(3):
            status, body, _ = self.topo.http(self.node.bound, INFO_URL, {"Metadata": "true"})
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body), {"tenantId": EMULATOR_TENANT})
        self.assertEqual(self.node.emulator_stats()["identity_info_requests"], 1)
        status, body, _ = self.topo.http(self.node.excepted, INFO_URL, {"Metadata": "true"})
        self.assertEqual(status, 404, body)
        status, body, _ = self.topo.http(self.node.bound, INFO_URL)
        self.assertEqual(status, 400, body)
        self.assertEqual(self.node.emulator_stats()["identity_info_requests"], 1)

    def test_throttled_imds_is_too_many_requests_with_retry_after(self):
        faults = json.dumps({"sequence": [{"status": 429}] * 5})  # every attempt of one fetch
        self.topo.nsexec(self.topo.mdh, ["curl", "-sSf", "-X", "POST", "-H",
                                         "Content-Type: application/json", "--data", faults,
                                         f"http://{METADATA_IP}/_emulator/faults"])
        headers = os.path.join(self.topo.workdir, "throttled.txt")
        cp = self.topo.nsexec(self.node.bound, [
            "curl", "-sS", "-m", "20", "-D", headers, "-w", "\n%{http_code}", "-H",
            "Metadata: true", nslib.token_url(RESOURCE)], check=False)
        body, status = cp.stdout.rsplit("\n", 1)
        self.assertEqual(status, "429", cp.stdout + cp.stderr)
        self.assertEqual(json.loads(body)["error"], "too_many_requests")
        self.assertRegex(open(headers).read(), r"(?im)^retry-after: *[1-9]\d*")


GROUPS = {"imds_contract": [ImdsContract]}

if __name__ == "__main__":
    e2e_test.GROUPS.clear()
    e2e_test.GROUPS.update(GROUPS)
    sys.exit(e2e_test.main(sys.argv))
