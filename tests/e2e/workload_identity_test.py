"""End to end, workload identity from the node (issue 12): in the network-namespace suite,
unmodified Python and Node Azure SDK clients in a pod namespace get a workload identity token
through nmid's DNAT, with both ServiceAccount token sources, from nmid-fake-cloud (a fake API
server with TokenRequest and a fake Azure AD that checks federated credentials); the pod with
an AzureIdentityBinding keeps its pod-identity token in the same run; a ServiceAccount with no
federated credential gets Azure AD's own error.

Usage: workload_identity_test.py BIN_DIR GROUP (ctest runs each as e2e.<GROUP>); as
e2e_test.py (root, exits 77 otherwise)."""

import base64
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "clients"))

import e2e_test  # noqa: E402
import other_clients  # noqa: E402
from base import ClientUnavailable  # noqa: E402
from fixture import KV_CLIENT_ID, RESOURCE  # noqa: E402
from nslib import wait_until  # noqa: E402

WI_CLIENT_ID = "6f0a6a3e-7e3b-4b38-9a4c-0123456789ab"
OTHER_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
WI_POD_UID = "e2e00000-0000-4000-8000-000000000001"  # fixture's second pod ("unbound")


def appid(token):
    claims = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["appid"]


class WorkloadIdentityBase(e2e_test.SdkBase):
    """The fixture's second pod (default/unbound) becomes a workload identity pod of
    ServiceAccount default/web; the first (default/demo) keeps its binding."""

    source = "tokenrequest"
    client_id = WI_CLIENT_ID  # the annotation; federated only for WI_CLIENT_ID

    def setUp(self):
        super().setUp()
        w = self.topo.workdir
        with open(os.path.join(w, "pods.json")) as f:
            pods = json.load(f)
        wi = pods["items"][1]
        wi["metadata"]["labels"]["azure.workload.identity/use"] = "true"
        wi["spec"]["serviceAccountName"] = "web"
        wi["spec"]["volumes"] = [{"name": "azure-identity-token", "projected": {"sources": [
            {"serviceAccountToken": {"audience": "api://AzureADTokenExchange",
                                     "expirationSeconds": 3600, "path": "azure-identity-token"}}]}}]
        with open(os.path.join(w, "pods.json"), "w") as f:
            json.dump(pods, f)
        config = {
            "pods": [wi],
            "serviceaccounts": [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
                "name": "web", "namespace": "default", "annotations": {
                    "azure.workload.identity/client-id": self.client_id,
                    "azure.workload.identity/tenant-id": TENANT}}}],
            "federations": [{"client_id": WI_CLIENT_ID,
                             "subject": "system:serviceaccount:default:web"}],
            "projected": [{"namespace": "default", "service_account": "web",
                           "pod": wi["metadata"]["name"], "uid": WI_POD_UID,
                           "volume": "azure-identity-token", "path": "azure-identity-token"}],
        }
        self.cloud_dir = os.path.join(w, "cloud")
        os.makedirs(self.cloud_dir, exist_ok=True)
        with open(os.path.join(w, "cloud.json"), "w") as f:
            json.dump(config, f)
        self.cloud = self.topo.spawn(self.topo.node, "fake-cloud", [
            os.path.join(e2e_test.BIN_DIR, "nmid-fake-cloud"), os.path.join(w, "cloud.json"),
            self.cloud_dir])
        # Waits for the whole line (a read may catch it half written): `listening api=.. aad=..`.
        def listening_line():
            return [l for l in self.cloud.log().splitlines()
                    if l.startswith("listening api=") and l.split(" aad=")[-1].startswith("https")]
        wait_until(lambda: listening_line() or not self.cloud.alive(), 15,
                   "nmid-fake-cloud to listen")
        self.assertTrue(self.cloud.alive(), self.cloud.log())
        line = listening_line()[0]
        self.api_url = line.split("api=")[1].split()[0]
        self.aad_url = line.split("aad=")[1].split()[0]

    def start_wi_nmid(self):
        extra = ["--workload-identity", f"--kubeconfig={self.cloud_dir}/kubeconfig",
                 f"--workload-identity-authority-host={self.aad_url}",
                 f"--aad-ca-file={self.cloud_dir}/ca.crt", "--aad-authority-allowlist=127.0.0.1",
                 f"--workload-identity-token-source={self.source}",
                 f"--kubelet-root-dir={self.cloud_dir}/kubelet"]
        return self.start_nmid(extra=extra)

    def calls(self):
        status, body, _ = self.topo.http(self.topo.node, self.api_url + "/_fake/calls",
                                         {"Authorization": "Bearer e2e-token"})
        if status == 0:  # the node namespace's curl has no CA: ask without verification
            body = self.topo.nsexec(self.topo.node, ["curl", "-sk", "-H",
                                                     "Authorization: Bearer e2e-token",
                                                     self.api_url + "/_fake/calls"]).stdout
        return json.loads(body)

    def check_workload_token(self, got):
        self.assertEqual(appid(got["token"]), WI_CLIENT_ID)
        calls = self.calls()
        self.assertEqual([c["subject"] for c in calls["aad"]],
                         ["system:serviceaccount:default:web"])
        self.assertEqual(calls["aad"][0]["status"], 200)
        expected_tokenrequests = 1 if self.source == "tokenrequest" else 0
        self.assertEqual(len(calls["tokenrequests"]), expected_tokenrequests, calls)
        # The same run serves the pod-identity pod from IMDS.
        status, body, _ = self.node.token(self.node.bound, client_id=KV_CLIENT_ID)
        self.assertEqual(status, 200, body)
        self.assert_token_json(body)
        self.assertEqual(self.upstream_calls(), 1)


class WorkloadIdentityPython(WorkloadIdentityBase):

    def test_python_sdk_gets_a_workload_identity_token_through_the_dnat(self):
        self.start_wi_nmid()
        got = self.run_sdk_in(self.node.unbound, [e2e_test.SYSTEM_PYTHON,
                                                  os.path.join(HERE, "clients", "python", "client.py"),
                                                  "--mode", "mi", "--client-id", WI_CLIENT_ID,
                                                  "--resource", RESOURCE])
        self.check_workload_token(got)


class WorkloadIdentityPythonProjected(WorkloadIdentityPython):
    source = "projected"


class WorkloadIdentityNode(WorkloadIdentityBase):

    def test_node_sdk_gets_a_workload_identity_token_through_the_dnat(self):
        # The client matrix's JavaScript client (the newest @azure/identity, from its lock file).
        client = next(c for c in other_clients.CLIENTS if c.name == "js-azure-identity-latest")
        try:
            argv = client.prepare(os.path.dirname(os.path.abspath(e2e_test.BIN_DIR)))
        except ClientUnavailable as e:
            self.skipTest(str(e))
        self.start_wi_nmid()
        got = self.run_sdk_in(self.node.unbound, [*argv, "--mode", "mi", "--client-id",
                                                  WI_CLIENT_ID, "--resource", RESOURCE])
        self.check_workload_token(got)


class WorkloadIdentityNodeProjected(WorkloadIdentityNode):
    source = "projected"


class WorkloadIdentityNotFederated(WorkloadIdentityBase):
    client_id = OTHER_CLIENT_ID

    def test_a_service_account_without_federation_gets_azure_ads_error(self):
        self.start_wi_nmid()
        status, body, _ = self.node.token(self.node.unbound)
        self.assertEqual(status, 403, body)
        error = json.loads(body)
        self.assertEqual(error["error"], "invalid_request")
        self.assertIn("AADSTS70021", error["error_description"])
        self.assertIn("system:serviceaccount:default:web", error["error_description"])


GROUPS = {
    "wi_python": [WorkloadIdentityPython, WorkloadIdentityPythonProjected,
                  WorkloadIdentityNotFederated],
    "wi_node": [WorkloadIdentityNode, WorkloadIdentityNodeProjected],
}

if __name__ == "__main__":
    e2e_test.GROUPS.clear()
    e2e_test.GROUPS.update(GROUPS)
    sys.exit(e2e_test.main(sys.argv))
