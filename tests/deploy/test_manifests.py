"""deploy/*.yaml: every object is well formed, RBAC is exactly least privilege, and the
DaemonSet carries every field nmid's deployment depends on."""

import os
import re
import unittest

import deploylib as d

# Flags the DaemonSet passes that nmid's flag table does not have yet (printed, not failed).
PENDING_FLAGS = set()

NAMESPACED_KINDS = {"ServiceAccount", "DaemonSet", "Pod", "AzureIdentity",
                    "AzureIdentityBinding", "AzurePodIdentityException",
                    "AzureAssignedIdentity"}
AAD_KINDS = {"AzureIdentity", "AzureIdentityBinding", "AzurePodIdentityException",
             "AzureAssignedIdentity"}


def string_maps_errors(obj, where):
    """Labels, annotations and env values must be strings (the API server rejects others)."""
    errors = []
    meta = obj.get("metadata", {})
    for field in ("labels", "annotations"):
        for key, value in (meta.get(field) or {}).items():
            if not isinstance(value, str):
                errors.append(f"{where}: metadata.{field}.{key} is {value!r}, not a string")
    return errors


class Manifests(unittest.TestCase):
    def setUp(self):
        self.files = d.manifest_files()
        self.objects = d.all_objects(self.files)
        self.examples = d.all_objects(d.example_files())

    def test_files_are_numbered_in_apply_order(self):
        names = [os.path.basename(p) for p in self.files]
        self.assertGreaterEqual(len(names), 4, names)
        for name in names:
            self.assertRegex(name, r"^\d\d-[a-z0-9-]+\.yaml$")
        numbers = [int(n[:2]) for n in names]
        self.assertEqual(len(set(numbers)), len(numbers), f"two files share a number: {names}")
        # Anything using the CRDs' kinds or the ServiceAccount comes after what defines them.
        order = {}
        for path, obj in self.objects:
            order.setdefault(obj["kind"], []).append(int(os.path.basename(path)[:2]))
        crd_file = max(order["CustomResourceDefinition"])
        for kind in AAD_KINDS & order.keys():
            self.assertGreater(min(order[kind]), crd_file, kind)
        self.assertLess(max(order["ServiceAccount"]), min(order["DaemonSet"]))

    def test_every_object_names_itself(self):
        self.assertTrue(self.examples, "deploy/example has no objects")
        for path, obj in self.objects + self.examples:
            where = os.path.relpath(path, d.ROOT)
            with self.subTest(file=where, kind=obj.get("kind")):
                self.assertIsInstance(obj, dict)
                for key in ("apiVersion", "kind"):
                    self.assertIsInstance(obj.get(key), str, f"{where}: {key}")
                    self.assertTrue(obj[key])
                name = obj.get("metadata", {}).get("name")
                self.assertIsInstance(name, str, f"{where}: metadata.name")
                self.assertRegex(name, r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
                if obj["kind"] in NAMESPACED_KINDS:
                    self.assertTrue(obj["metadata"].get("namespace"),
                                    f"{where}: {obj['kind']} {name} needs a namespace")
                self.assertEqual(string_maps_errors(obj, where), [])

    def test_rbac_is_exactly_least_privilege(self):
        role = d.find(self.objects, "ClusterRole", "nmid")
        granted = set()
        for rule in role["rules"]:
            self.assertEqual(set(rule) - {"apiGroups", "resources", "verbs"}, set(),
                             f"unexpected rule keys (resourceNames, nonResourceURLs?): {rule}")
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        self.assertNotIn("*", (group, resource, verb), rule)
                        granted.add((group, resource, verb))
        read = ("get", "list", "watch")
        aad = "aadpodidentity.k8s.io"
        expected = {("", "pods", v) for v in read}
        expected |= {("", "nodes/pods", "get"), ("", "secrets", "get")}
        aad_resources = ["azureidentities", "azureidentitybindings", "azurepodidentityexceptions"]
        # AzureAssignedIdentity objects are MIC's, read in standard mode (nmid's default) only:
        # charts/nmid drops the rule in managed mode, as aad-pod-identity's chart does.
        (ds,) = [o for _, o in self.objects if o["kind"] == "DaemonSet"]
        if "--operation-mode=managed" not in ds["spec"]["template"]["spec"]["containers"][0]["args"]:
            aad_resources.append("azureassignedidentities")
        expected |= {(aad, r, v) for v in read for r in aad_resources}
        self.assertEqual(granted, expected)
        # KEP-2862: nodes/proxy reaches the kubelet's exec endpoints; never by default.
        self.assertNotIn(("", "nodes/proxy", "get"), granted)
        # No other Role or ClusterRole sneaks in more.
        kinds = [o["kind"] for _, o in self.objects]
        self.assertEqual(kinds.count("ClusterRole"), 1)
        self.assertNotIn("Role", kinds)

        binding = d.find(self.objects, "ClusterRoleBinding")
        account = d.find(self.objects, "ServiceAccount")
        self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                              "kind": "ClusterRole", "name": "nmid"})
        self.assertEqual(binding["subjects"], [{
            "kind": "ServiceAccount", "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"]}])

    def test_optional_nodes_proxy_role_is_separate_and_explained(self):
        # deploy/*.yaml (the default install) never grants nodes/proxy; deploy/optional/ holds
        # it for clusters older than 1.33, in a role and binding of its own.
        for path, obj in self.objects:
            for rule in obj.get("rules", []):
                self.assertNotIn("nodes/proxy", rule.get("resources", []), path)
        paths = d.optional_files()
        self.assertEqual(sorted(os.path.basename(p) for p in paths),
                         ["node-condition.yaml", "nodes-proxy-rbac.yaml",
                          "workload-identity.yaml"])
        proxy_path = next(p for p in paths if p.endswith("nodes-proxy-rbac.yaml"))
        objects = d.all_objects([proxy_path])
        self.assertEqual(sorted(o["kind"] for _, o in objects),
                         ["ClusterRole", "ClusterRoleBinding"])
        role = d.find(objects, "ClusterRole")
        self.assertNotEqual(role["metadata"]["name"], "nmid")
        self.assertEqual(role["rules"], [{"apiGroups": [""], "resources": ["nodes/proxy"],
                                          "verbs": ["get"]}])
        binding = d.find(objects, "ClusterRoleBinding")
        self.assertNotEqual(binding["metadata"]["name"], "nmid")
        self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                              "kind": "ClusterRole",
                                              "name": role["metadata"]["name"]})
        account = d.find(self.objects, "ServiceAccount")
        self.assertEqual(binding["subjects"], [{
            "kind": "ServiceAccount", "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"]}])
        # The file says what it exposes and for which clusters.
        with open(proxy_path, encoding="utf-8") as f:
            text = f.read()
        for needle in ("1.33", "KEP-2862", "exec", "nodes/pods", "--pod-source=apiserver"):
            self.assertIn(needle, text)

    def test_daemonset(self):
        ds = d.find(self.objects, "DaemonSet")
        account = d.find(self.objects, "ServiceAccount")
        self.assertEqual(ds["apiVersion"], "apps/v1")
        self.assertEqual(ds["metadata"]["namespace"], account["metadata"]["namespace"])
        spec = ds["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        for key, value in spec["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(key), value, "selector must match the template")
        # A surge rollout: the new nmid starts beside the old one (SO_REUSEPORT listeners).
        self.assertEqual(spec["updateStrategy"], {"type": "RollingUpdate", "rollingUpdate": {
            "maxSurge": 1, "maxUnavailable": 0}})
        self.assertEqual(pod["serviceAccountName"], account["metadata"]["name"])
        self.assertIs(pod["hostNetwork"], True)
        self.assertEqual(pod["dnsPolicy"], "ClusterFirstWithHostNet")
        self.assertEqual(pod["priorityClassName"], "system-node-critical")
        self.assertIn({"operator": "Exists"}, pod["tolerations"], "must tolerate every taint")
        self.assertEqual(pod["nodeSelector"], {"kubernetes.io/os": "linux"})

        (c,) = pod["containers"]
        # hostNetwork turns declared ports into host ports, which would block the surge pod.
        self.assertNotIn("ports", c)
        self.assertEqual(c["image"], "nmid:latest")
        env = {e["name"]: e for e in c["env"]}
        for name, field in (("NODE_NAME", "spec.nodeName"), ("HOST_IP", "status.hostIP")):
            self.assertEqual(env[name]["valueFrom"], {"fieldRef": {"fieldPath": field}}, name)
        for e in c["env"]:
            if "value" in e:
                self.assertIsInstance(e["value"], str, e)

        args = c["args"]
        self.assertIn("--node=$(NODE_NAME)", args)
        self.assertIn("--kubelet-url=https://$(HOST_IP):10250", args)
        self.assertIn("--http-probe-port=8085", args)
        for arg in args:
            for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
                self.assertIn(var, env, f"{arg} refers to an undefined variable")
        known = d.nmid_flag_names()
        for arg in args:
            self.assertRegex(arg, r"^--[A-Za-z][A-Za-z0-9-]*(=.*)?$", "use --flag=value")
            flag = arg[2:].split("=", 1)[0]
            if flag in PENDING_FLAGS and flag not in known:
                print(f"note: --{flag} is not in daemon/config/flag_table.cpp yet")
                continue
            self.assertIn(flag, known, f"{arg}: nmid has no such flag")

        sc = c["securityContext"]
        self.assertEqual(sorted(sc["capabilities"]["add"]), ["NET_ADMIN", "NET_RAW"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertNotEqual(sc.get("privileged"), True)
        self.assertIs(sc.get("allowPrivilegeEscalation"), False)

        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        lock = mounts["/run/xtables.lock"]
        self.assertEqual(volumes[lock["name"]]["hostPath"],
                         {"path": "/run/xtables.lock", "type": "FileOrCreate"})
        self.assertNotEqual(lock.get("readOnly"), True, "iptables writes the lock")
        for path, mount in mounts.items():
            self.assertIn(mount["name"], volumes, path)

        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            self.assertEqual(c[probe]["httpGet"], {"path": path, "port": 8085}, probe)

        self.assertEqual(c["resources"], {"requests": {"cpu": "50m", "memory": "32Mi"},
                                          "limits": {"memory": "64Mi"}})

    def test_kube_system_exception(self):
        exc = d.find(self.objects, "AzurePodIdentityException")
        self.assertEqual(exc["apiVersion"], "aadpodidentity.k8s.io/v1")
        self.assertEqual(exc["metadata"]["namespace"], "kube-system")
        self.assertEqual(exc["spec"], {"podLabels": {"kubernetes.azure.com/managedby": "aks"}})
        # The standalone example ships the same exception.
        standalone = d.load_docs(os.path.join(d.DEPLOY, "standalone", "crds.yaml"))
        twin = [o for o in standalone if o["kind"] == "AzurePodIdentityException"]
        self.assertEqual([(o["metadata"], o["spec"]) for o in twin],
                         [(exc["metadata"], exc["spec"])])

    def test_example_binds_its_pod_to_its_identity(self):
        identity = d.find(self.examples, "AzureIdentity")
        binding = d.find(self.examples, "AzureIdentityBinding")
        pod = d.find(self.examples, "Pod")
        self.assertEqual(identity["spec"]["type"], 0)
        self.assertTrue(identity["spec"]["clientID"])
        self.assertRegex(identity["spec"]["resourceID"],
                         r"(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
                         r"Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$")
        self.assertEqual(binding["spec"]["azureIdentity"], identity["metadata"]["name"])
        self.assertEqual(pod["metadata"]["labels"]["aadpodidbinding"], binding["spec"]["selector"])
        namespaces = {o["metadata"]["namespace"] for o in (identity, binding, pod)}
        self.assertEqual(len(namespaces), 1, "managed mode matches within one namespace")


if __name__ == "__main__":
    unittest.main(verbosity=2)
