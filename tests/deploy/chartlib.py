"""Helpers for the Helm chart's checks (tests/deploy/test_chart.py): finds helm, renders
charts/nmid offline (`helm template`; NOTES.txt through a copy of the chart) and reads
the objects back. Without helm the caller skips (exit 77) with what to install."""

import os
import shutil
import subprocess
import sys
import tempfile

import deploylib as d

CHART = os.path.join(d.ROOT, "charts", "nmid")
AAD_VALUES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata",
                          "aad-pod-identity-values.yaml")


def find_helm():
    for candidate in (os.environ.get("HELM"), os.path.join(d.ROOT, ".tools", "bin", "helm"),
                      shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def helm_or_skip():
    helm = find_helm()
    if helm is None:
        print("SKIP: helm is missing; run scripts/install-deps.sh (it builds helm v3.21.4 into "
              ".tools/bin: GOBIN=$PWD/.tools/bin go install helm.sh/helm/v3/cmd/helm@v3.21.4), "
              "or set HELM=/path/to/helm")
        sys.exit(77)
    return helm


class Helm:
    """Runs helm with its own empty config/cache/data directories and no kubeconfig, so
    nothing reads the user's settings and nothing talks to a cluster."""

    def __init__(self, binary):
        self.binary = binary
        self.home = tempfile.mkdtemp(prefix="nmid-helm-")
        self.env = dict(os.environ)
        for var in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
            self.env[var] = os.path.join(self.home, var.lower())
        self.env["KUBECONFIG"] = os.path.join(self.home, "no-kubeconfig")

    def close(self):
        shutil.rmtree(self.home, ignore_errors=True)

    def run(self, *args, check=True):
        proc = subprocess.run([self.binary, *args], env=self.env, capture_output=True,
                              text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stderr}{proc.stdout}")
        return proc

    def template(self, *args, release="nmid", namespace="kube-system"):
        """The objects `helm template` renders (documents in order)."""
        out = self.run("template", release, CHART, "--namespace", namespace, *args).stdout
        return [doc for doc in d.yaml.safe_load_all(out) if doc is not None]

    def template_error(self, *args):
        """stderr of a `helm template` that must fail."""
        proc = self.run("template", "nmid", CHART, "--namespace", "kube-system", *args,
                        check=False)
        if proc.returncode == 0:
            raise AssertionError(f"helm template {' '.join(args)} succeeded; it must fail")
        return proc.stderr

    def notes(self, *args, release="nmid", namespace="kube-system"):
        """NOTES.txt rendered with these values. `helm template` never prints NOTES.txt and
        `helm install --dry-run=client` still calls the cluster, so a copy of the chart
        carries NOTES.txt's text once more inside a ConfigMap template, rendered offline."""
        if not hasattr(self, "_notes_chart"):
            self._notes_chart = os.path.join(self.home, "chart")
            shutil.copytree(CHART, self._notes_chart)
            with open(os.path.join(CHART, "templates", "NOTES.txt"), encoding="utf-8") as f:
                notes = f.read()
            with open(os.path.join(self._notes_chart, "templates", "zz-notes.yaml"), "w",
                      encoding="utf-8") as f:
                f.write('{{- define "test.notes" -}}\n' + notes + '{{- end -}}\n'
                        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
                        'data:\n  notes: {{ include "test.notes" . | toJson }}\n')
        out = self.run("template", release, self._notes_chart, "--namespace", namespace,
                       "--show-only", "templates/zz-notes.yaml", *args).stdout
        return d.yaml.safe_load(out)["data"]["notes"]


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind, name=None):
    return d.find([(None, o) for o in objects], kind, name)


def container(objects):
    (c,) = one(objects, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    return c


def args_of(objects):
    return container(objects)["args"]


def env_of(objects):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objects)["env"]}


def rules_of(objects, name="nmid"):
    """(group, resource, verb) triples the ClusterRole grants."""
    granted = set()
    for rule in one(objects, "ClusterRole", name)["rules"]:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                for v in rule["verbs"]:
                    granted.add((g, r, v))
    return granted


def leaf_keys(value, prefix):
    """Dotted keys of the leaves of a values map (empty maps are leaves), as NOTES lists them."""
    if isinstance(value, dict) and value:
        keys = []
        for k, v in value.items():
            keys += leaf_keys(v, f"{prefix}.{k}")
        return keys
    return [prefix]
