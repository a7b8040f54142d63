"""The node under test: topology + imds-emulator on the metadata host + nmid in the node
namespace, with the pods and CRDs of a standalone node (a bound pod, an unbound pod and an
excepted kube-system pod)."""

import json
import os
import signal
import subprocess

import nslib
from nslib import METADATA_IP, NODE_IP, wait_until

KV_CLIENT_ID = "00000000-0000-0000-0000-0000000000a1"
KV_RESOURCE_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/"
                  "Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader")
# The identity's object (principal) id: given to the emulator explicitly (it would derive one
# from the client id otherwise) and to nmid through the AzureIdentity's spec.objectID, so a
# request naming it with `object_id` selects the identity in both.
KV_OBJECT_ID = "00000000-0000-4000-8000-0000000000b1"
# A second identity bound to the same pod (Node(second_identity=True), the client matrix):
# sorting after kv-reader, it is served only when a request names it, so a client that gets it
# has sent its selector.
KV_WRITER_CLIENT_ID = "00000000-0000-0000-0000-0000000000a2"
KV_WRITER_RESOURCE_ID = KV_RESOURCE_ID.replace("kv-reader", "kv-writer")
KV_WRITER_OBJECT_ID = "00000000-0000-4000-8000-0000000000b2"
NODE_CLIENT_ID = "00000000-0000-0000-0000-0000000000f0"  # the VM's system-assigned identity
NODE_NAME = "e2e-node"
NMI_PORT = 2579
# What an SDK client runs with in a pod: nothing (IDENTITY_*, MSI_*, AZURE_*, proxies) that would
# switch it away from IMDS.
CLEAN_ENV = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
RESOURCE = "https://vault.azure.net"

# pod1: bound (default/demo), pod2: unbound (default/unbound), pod3: excepted (kube-system).
POD_SPECS = [
    ("default", "demo", {"app": "demo", "aadpodidbinding": "kv-reader"}),
    ("default", "unbound", {"app": "unbound"}),
    ("kube-system", "aks-agent", {"kubernetes.azure.com/managedby": "aks"}),
]

CRDS = f"""\
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentity
metadata: {{name: kv-reader, namespace: default}}
spec:
  type: 0
  resourceID: {KV_RESOURCE_ID}
  clientID: {KV_CLIENT_ID}
  objectID: {KV_OBJECT_ID}
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentityBinding
metadata: {{name: kv-reader-binding, namespace: default}}
spec: {{azureIdentity: kv-reader, selector: kv-reader}}
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzurePodIdentityException
metadata: {{name: aks-addon-exception, namespace: kube-system}}
spec:
  podLabels: {{kubernetes.azure.com/managedby: aks}}
"""


SECOND_IDENTITY_CRDS = f"""\
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentity
metadata: {{name: kv-writer, namespace: default}}
spec:
  type: 0
  resourceID: {KV_WRITER_RESOURCE_ID}
  clientID: {KV_WRITER_CLIENT_ID}
  objectID: {KV_WRITER_OBJECT_ID}
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentityBinding
metadata: {{name: kv-writer-binding, namespace: default}}
spec: {{azureIdentity: kv-writer, selector: kv-reader}}
"""


def pod_list(pod_ips):
    items = []
    for i, (ip, (ns, name, labels)) in enumerate(zip(pod_ips, POD_SPECS)):
        items.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "uid": f"e2e00000-0000-4000-8000-{i:012d}"},
            "spec": {"nodeName": NODE_NAME, "serviceAccountName": "default",
                     "containers": [{"name": name, "image": "debian:12"}]},
            "status": {"phase": "Running", "hostIP": NODE_IP, "podIP": ip,
                       "podIPs": [{"ip": ip}]},
        })
    return {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}


class Node:
    """One topology with the emulator running; nmid instances are started per test."""

    def __init__(self, bin_dir, log=print, second_identity=False):
        self.bin_dir = bin_dir
        self.second_identity = second_identity
        self.log = log
        self.topo = nslib.Topology(pods=len(POD_SPECS), log=log)
        self.emulator = None
        self._nmid_count = 0
        self.bound, self.unbound, self.excepted = self.topo.pods
        self.bound_ip, self.unbound_ip, self.excepted_ip = self.topo.pod_ips

    def start(self):
        self.topo.create()
        w = self.topo.workdir
        with open(os.path.join(w, "pods.json"), "w") as f:
            json.dump(pod_list(self.topo.pod_ips), f)
        with open(os.path.join(w, "crds.yaml"), "w") as f:
            f.write(CRDS + (SECOND_IDENTITY_CRDS if self.second_identity else ""))
        second = ["--identity", f"{KV_WRITER_CLIENT_ID}:{KV_WRITER_RESOURCE_ID}:{KV_WRITER_OBJECT_ID}"]
        self.emulator = self.topo.spawn(
            self.topo.mdh, "emulator",
            [os.path.join(self.bin_dir, "imds-emulator"), "--listen", f"{METADATA_IP}:80",
             "--identity", f"{KV_CLIENT_ID}:{KV_RESOURCE_ID}:{KV_OBJECT_ID}",
             "--system-assigned", NODE_CLIENT_ID, *(second if self.second_identity else [])])
        wait_until(lambda: "listening on" in self.emulator.log() or not self.emulator.alive(), 10,
                   "imds-emulator to listen")
        if not self.emulator.alive():
            raise RuntimeError("imds-emulator exited:\n" + self.emulator.log())
        return self

    def destroy(self):
        self.topo.destroy()

    # ---- the metadata host -----------------------------------------------------------------

    def emulator_stats(self):
        return self.topo.json_get(self.topo.mdh, f"http://{METADATA_IP}/_emulator/stats")

    def emulator_reset(self):
        status, body, _ = self.topo.http(self.topo.mdh, f"http://{METADATA_IP}/_emulator/reset",
                                         method="POST")
        assert status in (200, 204), (status, body)

    def emulator_faults(self, sequence):
        """Scripts the emulator's next token answers (daemon/emulator/control.cpp); returns
        the number of faults pending."""
        cp = self.topo.nsexec(self.topo.mdh, [
            "curl", "-sS", "-m", "3", "--noproxy", "*", "-X", "POST", "-H",
            "Content-Type: application/json", "-d", json.dumps({"sequence": sequence}),
            f"http://{METADATA_IP}/_emulator/faults"])
        return json.loads(cp.stdout)["pending_faults"]

    def mdh_syn_count(self):
        """SYNs from the pod subnet that reached the metadata host (a counting rule in mdh)."""
        out = self.topo.nsexec(self.topo.mdh, ["iptables-nft", "-t", "filter", "-L", "INPUT",
                                               "-v", "-x", "-n"]).stdout
        for line in out.splitlines():
            if "e2e-pod-syn" in line:
                return int(line.split()[0])
        raise RuntimeError("counting rule missing in the metadata host:\n" + out)

    def add_mdh_syn_counter(self):
        self.topo.nsexec(self.topo.mdh, [
            "iptables-nft", "-A", "INPUT", "-s", nslib.POD_SUBNET, "-p", "tcp", "--syn", "--dport",
            "80", "-m", "comment", "--comment", "e2e-pod-syn"])

    # ---- nmid ------------------------------------------------------------------------------

    def nmid_args(self, backend="auto", target="127.0.0.1", probe_port=8085,
                  metrics_port=9095, interval=1, extra=()):
        w = self.topo.workdir
        args = [os.path.join(self.bin_dir, "nmid"), "--operation-mode=managed",
                f"--node={NODE_NAME}", f"--pods-file={w}/pods.json", f"--crds-file={w}/crds.yaml",
                f"--nmi-port={NMI_PORT}", f"--nmi-listen-address={target}",
                f"--http-probe-port={probe_port}", f"--prometheus-port={metrics_port}",
                "--debug-address=127.0.0.1:0",
                f"--iptables-backend={backend}", f"--ipt-update-interval-sec={interval}"]
        if target.startswith("127."):
            args.append("--set-route-localnet")
        return args + list(extra)

    def start_nmid(self, wait_ready=True, cpu=None, **kwargs):
        self._nmid_count += 1
        args = self.nmid_args(**kwargs)
        probe = kwargs.get("probe_port", 8085)
        proc = self.topo.spawn(self.topo.node, f"nmid-{self._nmid_count}", args, cpu=cpu)
        proc.probe_port = probe
        proc.metrics_port = kwargs.get("metrics_port", 9095)
        if wait_ready:
            self.wait_ready(proc)
        return proc

    def readyz(self, proc):
        return self.topo.http(self.topo.node, f"http://127.0.0.1:{proc.probe_port}/readyz",
                              timeout=2)

    def wait_ready(self, proc, deadline=15):
        def ready():
            if not proc.alive():
                raise RuntimeError(f"nmid exited with {proc.popen.returncode}:\n{proc.log()}")
            return self.readyz(proc)[0] == 200
        try:
            wait_until(ready, deadline, "nmid /readyz 200")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\nreadyz: {self.readyz(proc)}\nlog:\n{proc.log()}") from None

    def metrics(self, proc):
        status, body, _ = self.topo.http(self.topo.node,
                                         f"http://127.0.0.1:{proc.metrics_port}/metrics")
        assert status == 200, (status, body)
        return nslib.parse_prometheus(body)

    def kill9(self, proc):
        proc.signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def cleanup_cmd(self, backend):
        """`nmid cleanup` in the node namespace (what an uninstall Job runs)."""
        return self.topo.nsexec(self.topo.node, [
            os.path.join(self.bin_dir, "nmid"), "cleanup", f"--iptables-backend={backend}",
            f"--metadata-ip={METADATA_IP}", "--metadata-port=80"], check=False)

    # ---- rules in the node namespace -------------------------------------------------------

    def nat_rules(self, backend):
        """`-A ...` lines of the nat table of `backend` in the node namespace."""
        out = self.topo.nsexec(self.topo.node, [f"iptables-{backend}-save", "-t", "nat"]).stdout
        return [line for line in out.splitlines() if line.startswith("-A ")]

    @staticmethod
    def expected_rules(target):
        return [
            "-A PREROUTING -j aad-metadata",
            f"-A aad-metadata ! -s 127.0.0.1/32 -d {METADATA_IP}/32 -p tcp -m tcp --dport 80 "
            f"-j DNAT --to-destination {target}:{NMI_PORT}",
            "-A aad-metadata -j RETURN",
        ]

    def ipt(self, backend, *args):
        return self.topo.nsexec(self.topo.node, [f"iptables-{backend}", "-w", "5", *args])

    # ---- requests from pods ----------------------------------------------------------------

    def run_client(self, pod, argv, timeout=60):
        """Runs an SDK client in `pod` with CLEAN_ENV (HOME: the work directory); returns the
        CompletedProcess (text), or one with returncode -9 and what it printed on a timeout."""
        env = dict(CLEAN_ENV, HOME=self.topo.workdir)
        argv = ["env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv]
        try:
            return self.topo.nsexec(pod, argv, check=False, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
            return subprocess.CompletedProcess(argv, -9, out, err + f"\ntimed out after {timeout}s")

    def token(self, ns, client_id=None, timeout=3.0, connect_timeout=None):
        return self.topo.http(ns, nslib.token_url(RESOURCE, client_id), {"Metadata": "true"},
                              timeout=timeout, connect_timeout=connect_timeout)
