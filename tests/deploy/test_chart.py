#!/usr/bin/env python3
"""charts/nmid (issue 13 item 1): `helm lint` is clean; rendered with its defaults, with
aad-pod-identity's own default values, and with aad-pod-identity's documented examples, it gives
exactly the nmid flags NMI would have got, least-privilege RBAC, and no MIC objects; NOTES.txt
names the ignored mic.*/adminsecret.* keys; every flag it can render is a real nmid flag; and
deploy/ is what scripts/render-deploy.sh makes of it. Skips (exit 77) without helm."""

import filecmp
import os
import re
import subprocess
import tempfile
import unittest

import chartlib as c
import deploylib as d

HELM = c.helm_or_skip()
READ = ("get", "list", "watch")
AAD = "aadpodidentity.k8s.io"
KUBELET_URL = "--kubelet-url=https://$(HOST_IP):10250"


def aad(*more):
    return ("-f", c.AAD_VALUES, *more)


def expected_rules(standard):
    rules = {("", "pods", v) for v in READ} | {("", "nodes/pods", "get"), ("", "secrets", "get")}
    resources = ["azureidentities", "azureidentitybindings", "azurepodidentityexceptions"]
    if standard:
        resources.append("azureassignedidentities")
    return rules | {(AAD, r, v) for r in resources for v in READ}


class Chart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.helm = c.Helm(HELM)

    @classmethod
    def tearDownClass(cls):
        cls.helm.close()

    def render(self, *args, **kw):
        return self.helm.template(*args, **kw)

    def test_lint_is_clean(self):
        for extra in ((), aad(), ("--set", "nmid.workloadIdentity.enabled=true",
                                  "--set", "nmid.nodesProxy.enabled=true",
                                  "--set", "nmid.nodeCondition.enabled=true")):
            out = self.helm.run("lint", "--strict", c.CHART, *extra).stdout
            self.assertIn("1 chart(s) linted, 0 chart(s) failed", out)
            self.assertNotRegex(out, r"\[(WARNING|ERROR)\]", out)

    def test_defaults(self):
        objs = self.render()
        self.assertEqual(sorted(o["kind"] for o in objs), [
            "AzurePodIdentityException", "ClusterRole", "ClusterRoleBinding", "DaemonSet",
            "ServiceAccount"])
        self.assertEqual(c.args_of(objs), [
            "--node=$(NODE_NAME)", "--enableScaleFeatures=true",
            "--metadata-header-required=true", "--operation-mode=managed", "--forceNamespaced",
            "--kubelet-config=/etc/default/kubelet", "--http-probe-port=8085",
            "--prometheus-port=9090", KUBELET_URL])
        self.assertNotIn("FORCENAMESPACED", c.env_of(objs))
        self.assertEqual(c.rules_of(objs), expected_rules(standard=False))
        self.assertEqual(c.container(objs)["image"], "nmid:latest")
        # The names and labels of the kubectl-applied deploy/ objects, so upgrades are in place.
        for o in objs:
            if o["kind"] != "AzurePodIdentityException":
                self.assertEqual(o["metadata"]["name"], "nmid", o["kind"])
                self.assertEqual(o["metadata"]["labels"]["app.kubernetes.io/name"], "nmid")
        ds = c.one(objs, "DaemonSet")
        self.assertEqual(ds["spec"]["selector"], {"matchLabels": {"app.kubernetes.io/name": "nmid"}})
        self.assertEqual(c.one(objs, "AzurePodIdentityException")["metadata"],
                         {"name": "aks-addon-exception", "namespace": "kube-system"})
        self.assertNotIn("Ignored", self.helm.notes())

    def test_crds_are_installed_from_crds_dir(self):
        objs = self.render("--include-crds")
        names = sorted(o["metadata"]["name"] for o in c.by_kind(objs, "CustomResourceDefinition"))
        self.assertEqual(names, [f"{p}.{AAD}" for p in (
            "azureassignedidentities", "azureidentities", "azureidentitybindings",
            "azurepodidentityexceptions")])
        self.assertFalse(os.path.exists(os.path.join(c.CHART, "templates", "crds.yaml")),
                         "CRDs are not templates: Helm installs crds/ on first install only")

    def test_aad_pod_identity_default_values(self):
        objs = self.render(*aad(), release="aad-pod-identity", namespace="default")
        self.assertEqual(c.args_of(objs), [
            "--node=$(NODE_NAME)", "--enableScaleFeatures=true",
            "--metadata-header-required=true", "--operation-mode=standard",
            "--kubelet-config=/etc/default/kubelet", "--http-probe-port=8085", KUBELET_URL])
        self.assertEqual(c.env_of(objs)["FORCENAMESPACED"], "false")
        self.assertEqual(c.rules_of(objs), expected_rules(standard=True))
        kinds = sorted(o["kind"] for o in objs)
        self.assertEqual(kinds, ["AzurePodIdentityException", "ClusterRole",
                                 "ClusterRoleBinding", "DaemonSet", "ServiceAccount"])
        for o in objs:  # no MIC Deployment, adminsecret Secret, PDB, PSP or mic exception
            self.assertNotIn("mic", o["metadata"]["name"])
            self.assertEqual(o["metadata"].get("namespace", "default"),
                             "kube-system" if o["kind"] == "AzurePodIdentityException"
                             else "default")
        ctr = c.container(objs)
        self.assertEqual(ctr["image"], "nmid:latest", "NMI's image must not be used")
        self.assertEqual(ctr["resources"], {"limits": {"cpu": "200m", "memory": "512Mi"},
                                            "requests": {"cpu": "100m", "memory": "256Mi"}})
        pod = c.one(objs, "DaemonSet")["spec"]["template"]["spec"]
        self.assertNotIn("priorityClassName", pod)
        self.assertEqual(pod["tolerations"], [{"operator": "Exists"}])
        self.assertEqual(ctr["livenessProbe"]["httpGet"], {"path": "/healthz", "port": 8085})

    def test_notes_list_ignored_keys(self):
        notes = self.helm.notes(*aad())
        with open(c.AAD_VALUES, encoding="utf-8") as f:
            values = d.yaml.safe_load(f)
        expected = c.leaf_keys(values["mic"], "mic") + c.leaf_keys(values["adminsecret"],
                                                                   "adminsecret")
        self.assertIn("mic.leaderElection.instance", expected)
        listed = re.findall(r"^  ((?:mic|adminsecret|nmi|image)\.\S+)$", notes, re.M)
        self.assertEqual(sorted(listed), sorted(expected + ["image.repository", "nmi.image",
                                                            "nmi.tag"]))
        self.assertIn("This chart does not run MIC", notes)
        notes = self.helm.notes("--set", "mic.replicas=3", "--set", "adminsecret.useMSI=true")
        listed = re.findall(r"^  (\S+)$", notes, re.M)
        self.assertEqual(listed, ["mic.replicas", "adminsecret.useMSI"])

    def test_managed_mode_example(self):
        objs = self.render(*aad("--set", "operationMode=managed"))
        args = c.args_of(objs)
        self.assertIn("--operation-mode=managed", args)
        self.assertIn("--forceNamespaced", args)
        self.assertNotIn("FORCENAMESPACED", c.env_of(objs))
        self.assertEqual(c.rules_of(objs), expected_rules(standard=False))
        self.assertNotIn("does not run MIC", self.helm.notes(*aad("--set", "operationMode=managed")))

    def test_feature_flag_examples(self):
        base = c.args_of(self.render(*aad()))
        cases = [
            (["nmi.allowNetworkPluginKubenet=true"], ["--allow-network-plugin-kubenet=true"]),
            (["nmi.setRetryAfterHeader=true", "nmi.retryAttemptsForCreated=1",
              "nmi.retryAttemptsForAssigned=1", "nmi.findIdentityRetryIntervalInSeconds=1"],
             ["--retry-attempts-for-created=1", "--retry-attempts-for-assigned=1",
              "--find-identity-retry-interval=1", "--set-retry-after-header=true"]),
            (["nmi.enableConntrackDeletion=true"], ["--enable-conntrack-deletion=true"]),
        ]
        for sets, flags in cases:
            with self.subTest(sets=sets):
                args = c.args_of(self.render(*aad(*[a for s in sets for a in ("--set", s)])))
                self.assertEqual([a for a in args if a not in base], flags)
                self.assertEqual([a for a in base if a not in args], [])
        for key in ("allowNetworkPluginKubenet", "setRetryAfterHeader", "enableConntrackDeletion"):
            with self.subTest(off=key):  # only `true` turns them on
                self.assertEqual(c.args_of(self.render(
                    *aad("--set-string", f"nmi.{key}=false"))), base)

    def test_nmi_values_render_their_flags_or_nothing(self):
        base = c.args_of(self.render(*aad()))
        cases = [
            ("nmi.logVerbosity=3", ["-v=3"], []),
            ("nmi.loggingFormat=json", ["--log-format=json"], []),
            ("nmi.ipTableUpdateTimeIntervalInSeconds=30", ["--ipt-update-interval-sec=30"], []),
            ("nmi.micNamespace=identity", ["--MICNamespace=identity"], []),
            ("nmi.prometheusPort=9191", ["--prometheus-port=9191"], []),
            ("nmi.blockInstanceMetadata=true", ["--block-instance-metadata=true"], []),
            ("nmi.metadataHeaderRequired=false", ["--metadata-header-required=false"],
             ["--metadata-header-required=true"]),
            ("nmi.enableScaleFeatures=false", ["--enableScaleFeatures=false"],
             ["--enableScaleFeatures=true"]),
            ("nmi.probePort=9000", ["--http-probe-port=9000"], ["--http-probe-port=8085"]),
            ("nmi.kubeletConfig=/etc/kubelet.env", ["--kubelet-config=/etc/kubelet.env"],
             ["--kubelet-config=/etc/default/kubelet"]),
            ("customUserAgent=contoso/1.0", ["--custom-user-agent=contoso/1.0"], []),
            ("nmi.logVerbosity=0", [], []),
            ("nmid.kubeletURL=", [], [KUBELET_URL]),
        ]
        for setting, added, removed in cases:
            with self.subTest(setting=setting):
                args = c.args_of(self.render(*aad("--set", setting)))
                self.assertEqual([a for a in args if a not in base], added)
                self.assertEqual([a for a in base if a not in args], removed)
        objs = self.render(*aad("--set", "nmi.probePort=9000", "--set", "nmi.prometheusPort=9191"))
        ctr = c.container(objs)
        self.assertEqual(ctr["readinessProbe"]["httpGet"]["port"], 9000)
        self.assertNotIn("ports", ctr, "host ports would block the surge pod")
        objs = self.render(*aad("--set", "nmi.probePort="))
        self.assertNotIn("--http-probe-port", " ".join(c.args_of(objs)))
        self.assertEqual(c.container(objs)["livenessProbe"]["httpGet"]["port"], 8080)
        objs = self.render("--set", "nmi.kubeletConfig=/etc/kubelet.env")
        pod = c.one(objs, "DaemonSet")["spec"]["template"]["spec"]
        self.assertEqual([v["hostPath"]["path"] for v in pod["volumes"]
                          if v["name"] == "kubelet-config"], ["/etc/kubelet.env"])

    def test_force_namespaced_env(self):
        for flag in ("--set", "--set-string"):
            env = c.env_of(self.render(*aad(flag, "forceNamespaced=true")))
            self.assertEqual(env["FORCENAMESPACED"], "true", flag)

    def test_install_mic_exception_truthiness(self):
        for args, present in (((), True), (("--set-string", "installMICException=false"), True),
                              (("--set", "installMICException=false"), False),
                              (("--set", "installMICException="), False)):
            with self.subTest(args=args):
                kinds = [o["kind"] for o in self.render(*aad(*args))]
                self.assertEqual("AzurePodIdentityException" in kinds, present)

    def test_rbac_values(self):
        objs = self.render("--set", "rbac.enabled=false")
        self.assertEqual([o["kind"] for o in objs], ["DaemonSet", "AzurePodIdentityException"])
        self.assertNotIn("serviceAccountName", c.one(objs, "DaemonSet")["spec"]["template"]["spec"])
        granted = c.rules_of(self.render("--set", "rbac.allowAccessToSecrets=false"))
        self.assertEqual(granted, expected_rules(False) - {("", "secrets", "get")})
        self.assertIn("Kubernetes 1.25", self.helm.template_error("--set", "rbac.pspEnabled=true"))
        objs = self.render("--set", "rbac.pspEnabled=true",
                           "--api-versions", "policy/v1beta1/PodSecurityPolicy")
        psp = c.one(objs, "PodSecurityPolicy", "nmid-psp")
        self.assertEqual(psp["spec"]["allowedCapabilities"], ["NET_ADMIN", "NET_RAW"])
        self.assertIn({"apiGroups": ["policy"], "resources": ["podsecuritypolicies"],
                       "resourceNames": ["nmid-psp"], "verbs": ["use"]},
                      c.one(objs, "ClusterRole", "nmid")["rules"])
        objs = self.render("--set", "rbac.createUserFacingClusterRoles=true",
                           "--set", "fullnameOverride=pod-identity")
        view = c.one(objs, "ClusterRole", "pod-identity-view")
        for verb in ("view", "edit", "admin"):
            self.assertEqual(view["metadata"]["labels"][f"rbac.authorization.k8s.io/aggregate-to-{verb}"], "true")
        self.assertIn("create", c.one(objs, "ClusterRole", "pod-identity-edit")["rules"][0]["verbs"])
        self.assertEqual(c.one(objs, "ClusterRole", "nmid")["metadata"]["name"], "nmid")

    def test_image_and_names(self):
        objs = self.render("--set", "image.imagePullPolicy=Always",
                           "--set", "imagePullSecrets[0].name=regcred",
                           "--set", "nmid.image.repository=registry.example/nmid",
                           "--set", "nmid.image.digest=sha256:" + "a" * 64)
        ctr = c.container(objs)
        self.assertEqual(ctr["image"], "registry.example/nmid@sha256:" + "a" * 64)
        self.assertEqual(ctr["imagePullPolicy"], "Always")
        pod = c.one(objs, "DaemonSet")["spec"]["template"]["spec"]
        self.assertEqual(pod["imagePullSecrets"], [{"name": "regcred"}])
        objs = self.render("--set", "nameOverride=pod-identity", release="anything")
        for o in objs:
            if o["kind"] != "AzurePodIdentityException":
                self.assertEqual(o["metadata"]["name"], "pod-identity")
        self.assertEqual(c.one(objs, "ClusterRoleBinding")["subjects"][0]["name"], "pod-identity")
        self.assertEqual(c.one(objs, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"],
                         "pod-identity")

    def test_optional_pieces(self):
        objs = self.render("--set", "nmid.workloadIdentity.enabled=true", namespace="identity")
        self.assertEqual(c.args_of(objs)[-1], "--workload-identity")
        role = c.one(objs, "ClusterRole", "nmid-workload-identity")
        self.assertEqual(role["rules"][1]["resources"], ["serviceaccounts/token"])
        self.assertEqual(c.one(objs, "ClusterRoleBinding", "nmid-workload-identity")["subjects"],
                         [{"kind": "ServiceAccount", "name": "nmid", "namespace": "identity"}])
        policy = c.one(objs, "ValidatingAdmissionPolicy", "nmid-tokenrequests")
        self.assertIn("'system:serviceaccount:identity:nmid'",
                      policy["spec"]["matchConditions"][0]["expression"])
        c.one(objs, "ValidatingAdmissionPolicyBinding", "nmid-tokenrequests")
        objs = self.render("--set", "nmid.nodesProxy.enabled=true")
        self.assertIn(("", "nodes/proxy", "get"), c.rules_of(objs, "nmid-kubelet-nodes-proxy"))
        self.assertNotIn(("", "nodes/proxy", "get"), c.rules_of(objs))
        objs = self.render("--set", "nmid.nodeCondition.enabled=true",
                           "--set", "nmid.debugAddress=[::1]:8086", namespace="identity")
        self.assertEqual(c.args_of(objs)[-2:], ["--node-condition", "--debug-address=[::1]:8086"])
        self.assertIn(("", "nodes/status", "patch"), c.rules_of(objs, "nmid-node-condition"))
        self.assertNotIn(("", "nodes/status", "patch"), c.rules_of(objs))
        policy = c.one(objs, "ValidatingAdmissionPolicy", "nmid-node-condition")
        self.assertIn("'system:serviceaccount:identity:nmid'",
                      policy["spec"]["matchConditions"][0]["expression"])
        self.assertEqual(c.one(objs, "NodeReadinessRule", "nmid-ready")["spec"]["conditions"],
                         [{"type": "NmidReady", "requiredStatus": "True"}])
        without_rule = self.render("--set", "nmid.nodeCondition.enabled=true",
                                   "--set", "nmid.nodeCondition.readinessRule=false")
        self.assertFalse([o for o in without_rule if o["kind"] == "NodeReadinessRule"])
        self.assertNotIn("--node-condition", c.args_of(self.render()))
        args = c.args_of(self.render("--set", "nmid.extraArgs={--pod-source=apiserver,--io-threads=2}"))
        self.assertEqual(args[-2:], ["--pod-source=apiserver", "--io-threads=2"])

    def test_azure_identities_all_three_types(self):
        values = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata",
                              "azure-identities-values.yaml")
        objs = self.render("-f", values, namespace="apps")
        ids = {o["metadata"]["name"]: o for o in c.by_kind(objs, "AzureIdentity")}
        bindings = {o["metadata"]["name"]: o for o in c.by_kind(objs, "AzureIdentityBinding")}
        self.assertEqual(sorted(ids), ["cert-sp", "secret-sp", "web-id"])
        self.assertEqual(ids["web-id"]["metadata"]["namespace"], "apps")
        self.assertEqual(ids["web-id"]["spec"], {
            "type": 0, "clientID": "00000000-0000-4000-8000-000000000001",
            "resourceID": "/subscriptions/s/resourcegroups/rg/providers/"
                          "Microsoft.ManagedIdentity/userAssignedIdentities/web"})
        self.assertEqual(ids["secret-sp"]["metadata"]["namespace"], "payments")
        self.assertEqual(ids["secret-sp"]["spec"], {
            "type": 1, "clientID": "00000000-0000-4000-8000-000000000002",
            "tenantID": "00000000-0000-4000-8000-0000000000aa",
            "clientPassword": {"name": "sp-secret", "namespace": "payments"},
            "auxiliaryTenantIDs": ["00000000-0000-4000-8000-0000000000bb"]})
        self.assertEqual(ids["cert-sp"]["spec"]["type"], 2)
        self.assertEqual(ids["cert-sp"]["spec"]["clientPassword"],
                         {"name": "sp-cert", "namespace": "apps"})
        self.assertEqual(bindings["web-binding"]["spec"], {"azureIdentity": "web-id",
                                                           "selector": "web"})
        self.assertEqual(bindings["secret-sp-binding"]["spec"]["azureIdentity"], "secret-sp")
        self.assertEqual(len(bindings), 3)
        crds = d.crds()
        for o in c.by_kind(objs, "AzureIdentity") + c.by_kind(objs, "AzureIdentityBinding"):
            errors = [e.message for e in d.validator_for(crds[o["kind"]]).iter_errors(o)]
            self.assertEqual(errors, [], o["metadata"]["name"])
        web = "azureIdentities.web.type=0,azureIdentities.web.binding.selector=web"
        failures = [
            ("azureIdentities.web.resourceID=/r", "azureIdentities.web.clientID is required"),
            ("azureIdentities.web.clientID=c", "azureIdentities.web.resourceID is required"),
            ("azureIdentities.web.clientID=c,azureIdentities.web.type=1",
             "azureIdentities.web.tenantID is required"),
            ("azureIdentities.web.clientID=c,azureIdentities.web.type=2,"
             "azureIdentities.web.tenantID=t", "azureIdentities.web.clientPassword is required"),
            ("azureIdentities.web.clientID=c,azureIdentities.web.resourceID=/r,"
             "azureIdentities.web.binding.selector=null", "azureIdentities.web.binding.selector is required"),
            ("azureIdentities.web.clientID=c,azureIdentities.web.type=3", "must be 0"),
        ]
        for setting, message in failures:
            with self.subTest(setting=setting):
                self.assertIn(message, self.helm.template_error("--set", web, "--set", setting))

    def test_schema_rejects_wrong_types_and_accepts_unknown_keys(self):
        for setting, where in (("operationMode=Managed", "/operationMode"),
                               ("nmid.extraArgs=--io-threads=2", "/nmid/extraArgs"),
                               ("nmi.loggingFormat=yaml", "/nmi/loggingFormat"),
                               ("nmid.workloadIdentity.enabled=yes", "/nmid/workloadIdentity/enabled")):
            with self.subTest(setting=setting):
                self.assertIn(f"at '{where}'", self.helm.template_error("--set", setting))
        # aad-pod-identity keys this chart never heard of still pass (values are a superset).
        self.render("--set", "mic.someFutureKey=1", "--set", "nmi.someFutureKey=x",
                    "--set", "somethingElse.entirely=true")

    def test_every_flag_it_can_render_is_an_nmid_flag(self):
        known = d.nmid_flag_names()
        sets = ["nmi.logVerbosity=2", "nmi.loggingFormat=json", "nmi.micNamespace=x",
                "nmi.ipTableUpdateTimeIntervalInSeconds=30", "nmi.retryAttemptsForCreated=1",
                "nmi.retryAttemptsForAssigned=1", "nmi.findIdentityRetryIntervalInSeconds=1",
                "nmi.blockInstanceMetadata=true", "nmi.allowNetworkPluginKubenet=true",
                "nmi.setRetryAfterHeader=true", "nmi.enableConntrackDeletion=true",
                "customUserAgent=x", "nmid.workloadIdentity.enabled=true",
                "nmid.nodeCondition.enabled=true", "nmid.debugAddress=127.0.0.1:9999"]
        rendered = set()
        for mode in ("standard", "managed"):
            args = c.args_of(self.render("--set", ",".join(sets + [f"operationMode={mode}"])))
            rendered |= {re.match(r"^--?([^=]+)", a).group(1) for a in args}
        # Every flag line of the template, whatever the values.
        with open(os.path.join(c.CHART, "templates", "_helpers.tpl"), encoding="utf-8") as f:
            template = re.findall(r"^--?([A-Za-z][\w-]*)", f.read(), re.M)
        self.assertGreaterEqual(len(template), 20)
        self.assertEqual(set(template), rendered, "a template flag no values reach, or the reverse")
        self.assertEqual(rendered - known, set(), "not nmid flags")

    def test_deploy_is_the_rendered_chart(self):
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run([os.path.join(d.ROOT, "scripts", "render-deploy.sh"), out],
                                  env=dict(self.helm.env, HELM=HELM), capture_output=True,
                                  text=True, timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            rendered = sorted(os.path.relpath(os.path.join(dp, f), out)
                              for dp, _, fs in os.walk(out) for f in fs)
            shipped = sorted(os.path.relpath(p, d.DEPLOY)
                             for p in d.manifest_files() + d.optional_files())
            self.assertEqual(rendered, shipped)
            drift = [p for p in rendered if not filecmp.cmp(os.path.join(out, p),
                                                            os.path.join(d.DEPLOY, p),
                                                            shallow=False)]
            self.assertEqual(drift, [], "deploy/ differs from the chart: run "
                                        "scripts/render-deploy.sh and commit the result")
            for p in rendered:
                with open(os.path.join(out, p), encoding="utf-8") as f:
                    self.assertTrue(f.readline().startswith(
                        "# Generated by scripts/render-deploy.sh from charts/nmid/"), p)


if __name__ == "__main__":
    unittest.main(verbosity=2)
