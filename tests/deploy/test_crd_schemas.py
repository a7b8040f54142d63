"""deploy/00-crds.yaml: the CRDs are aad-pod-identity's (names and field types), their
schemas are structural, and real objects validate against them while wrong ones do not."""

import copy
import json
import os
import unittest

import deploylib as d

GROUP = "aadpodidentity.k8s.io"

# (kind, plural, singular, listKind) as aad-pod-identity v1.8 names them.
NAMES = [
    ("AzureIdentity", "azureidentities", "azureidentity", "AzureIdentityList"),
    ("AzureIdentityBinding", "azureidentitybindings", "azureidentitybinding",
     "AzureIdentityBindingList"),
    ("AzurePodIdentityException", "azurepodidentityexceptions", "azurepodidentityexception",
     "AzurePodIdentityExceptionList"),
    ("AzureAssignedIdentity", "azureassignedidentities", "azureassignedidentity",
     "AzureAssignedIdentityList"),
]

# aad-pod-identity's field types (pkg/apis/aadpodidentity/v1/types.go; reference
# nmi-behaviour section 5). (type, format, nullable)
_IDENTITY_SPEC = {
    "type": ("integer", None, False),
    "resourceID": ("string", None, False),
    "clientID": ("string", None, False),
    "clientPassword": ("object", None, False),
    "clientPassword.name": ("string", None, False),
    "clientPassword.namespace": ("string", None, False),
    "tenantID": ("string", None, False),
    "auxiliaryTenantIDs": ("array", None, True),
    "auxiliaryTenantIDs.[]": ("string", None, False),
    "adEndpoint": ("string", None, False),
    "adResourceID": ("string", None, False),
    "replicas": ("integer", "int32", True),
    "metadata": ("object", None, False),
}
_BINDING_SPEC = {
    "azureIdentity": ("string", None, False),
    "selector": ("string", None, False),
    "weight": ("integer", None, False),
    "metadata": ("object", None, False),
}
_REPLICA_STATUS = {"availableReplicas": ("integer", "int32", False),
                   "metadata": ("object", None, False)}


def _prefixed(prefix, table):
    return {f"{prefix}.{k}": v for k, v in table.items()}


FIELDS = {
    "AzureIdentity": {**_prefixed("spec", _IDENTITY_SPEC), **_prefixed("status", _REPLICA_STATUS)},
    "AzureIdentityBinding": {**_prefixed("spec", _BINDING_SPEC),
                             **_prefixed("status", _REPLICA_STATUS)},
    "AzurePodIdentityException": {
        "spec.podLabels": ("object", None, False),
        "spec.podLabels.{}": ("string", None, False),
        "spec.metadata": ("object", None, False),
        "status.status": ("string", None, False),
        "status.metadata": ("object", None, False),
    },
    "AzureAssignedIdentity": {
        **_prefixed("spec.azureIdentityRef.spec", _IDENTITY_SPEC),
        **_prefixed("spec.azureIdentityRef.status", _REPLICA_STATUS),
        **_prefixed("spec.azureBindingRef.spec", _BINDING_SPEC),
        **_prefixed("spec.azureBindingRef.status", _REPLICA_STATUS),
        "spec.pod": ("string", None, False),
        "spec.podNamespace": ("string", None, False),
        "spec.nodename": ("string", None, False),
        "spec.replicas": ("integer", "int32", True),
        "spec.metadata": ("object", None, False),
        "status.status": ("string", None, False),
        "status.availableReplicas": ("integer", "int32", False),
        "status.metadata": ("object", None, False),
    },
}

PRINTER_COLUMNS = {
    "AzureIdentity": [("Type", ".spec.type"), ("ClientID", ".spec.clientID"),
                      ("Age", ".metadata.creationTimestamp")],
    "AzureIdentityBinding": [("AzureIdentity", ".spec.azureIdentity"),
                             ("Selector", ".spec.selector"),
                             ("Age", ".metadata.creationTimestamp")],
    "AzurePodIdentityException": [],
    "AzureAssignedIdentity": [],
}

# What MIC writes and `kubectl get -o yaml` returns for an AzureAssignedIdentity.
ASSIGNED = {
    "apiVersion": "aadpodidentity.k8s.io/v1",
    "kind": "AzureAssignedIdentity",
    "metadata": {"name": "demo-default-kv-reader", "namespace": "default",
                 "labels": {"nodename": "aks-nodepool1-12345678-vmss000000"},
                 "finalizers": ["azureassignedidentity.finalizers.aadpodidentity.k8s.io"]},
    "spec": {
        "azureIdentityRef": {
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
            "metadata": {"name": "kv-reader", "namespace": "default"},
            "spec": {"type": 0, "clientID": "00000000-0000-0000-0000-0000000000a1",
                     "resourceID": "/subscriptions/0/resourcegroups/rg/providers/"
                                   "Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader",
                     "auxiliaryTenantIDs": None, "replicas": None,
                     "metadata": {"creationTimestamp": None}},
            "status": {"availableReplicas": 0, "metadata": {"creationTimestamp": None}},
        },
        "azureBindingRef": {
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": "kv-reader-binding", "namespace": "default"},
            "spec": {"azureIdentity": "kv-reader", "selector": "kv-reader", "weight": 0,
                     "metadata": {"creationTimestamp": None}},
            "status": {"availableReplicas": 0, "metadata": {"creationTimestamp": None}},
        },
        "pod": "demo", "podNamespace": "default",
        "nodename": "aks-nodepool1-12345678-vmss000000", "replicas": 1,
        "metadata": {"creationTimestamp": None},
    },
    "status": {"status": "Assigned", "availableReplicas": 1,
               "metadata": {"creationTimestamp": None}},
}

# A service principal identity with every optional field aad-pod-identity defines.
SERVICE_PRINCIPAL = {
    "apiVersion": "aadpodidentity.k8s.io/v1",
    "kind": "AzureIdentity",
    "metadata": {"name": "graph-app", "namespace": "payments",
                 "annotations": {"aadpodidentity.k8s.io/Behavior": "namespaced"}},
    "spec": {"type": 1, "clientID": "00000000-0000-0000-0000-0000000000d4",
             "clientPassword": {"name": "graph-app-secret", "namespace": "payments"},
             "tenantID": "11111111-0000-0000-0000-000000000000",
             "auxiliaryTenantIDs": ["22222222-0000-0000-0000-000000000000"],
             "adEndpoint": "https://login.microsoftonline.com/",
             "adResourceID": "", "replicas": 1},
    "status": {"availableReplicas": 0},
}


def _with(obj, dotted, value):
    """A copy of `obj` with the field at `dotted` set to `value`."""
    out = copy.deepcopy(obj)
    *parents, last = dotted.split(".")
    node = out
    for part in parents:
        node = node[part]
    node[last] = value
    return out


class CrdDefinitions(unittest.TestCase):
    def setUp(self):
        self.crds = d.crds()

    def test_names_match_aad_pod_identity(self):
        self.assertEqual(sorted(self.crds), sorted(n[0] for n in NAMES))
        for kind, plural, singular, list_kind in NAMES:
            with self.subTest(kind=kind):
                crd = self.crds[kind]
                self.assertEqual(crd["apiVersion"], "apiextensions.k8s.io/v1")
                self.assertEqual(crd["metadata"]["name"], f"{plural}.{GROUP}")
                # The API server refuses CRDs in *.k8s.io groups without this annotation.
                self.assertTrue(crd["metadata"]["annotations"]["api-approved.kubernetes.io"]
                                .startswith("unapproved"))
                spec = crd["spec"]
                self.assertEqual(spec["group"], GROUP)
                self.assertEqual(spec["scope"], "Namespaced")
                self.assertEqual(spec["names"], {"kind": kind, "listKind": list_kind,
                                                 "plural": plural, "singular": singular})
                (version,) = spec["versions"]
                self.assertEqual((version["name"], version["served"], version["storage"]),
                                 ("v1", True, True))
                # MIC updates status through the main resource: no status subresource.
                self.assertFalse(version.get("subresources"))
                columns = [(c["name"], c["jsonPath"])
                           for c in version.get("additionalPrinterColumns", [])]
                self.assertEqual(columns, PRINTER_COLUMNS[kind])

    def test_field_types_match_aad_pod_identity(self):
        for kind, table in FIELDS.items():
            for path, (type_, fmt, nullable) in table.items():
                with self.subTest(kind=kind, field=path):
                    node = d.schema_at(self.crds[kind], path)
                    self.assertEqual(node.get("type"), type_)
                    self.assertEqual(node.get("format"), fmt)
                    self.assertEqual(bool(node.get("nullable")), nullable)

    def test_embedded_objects_stay_embedded_resources(self):
        assigned = self.crds["AzureAssignedIdentity"]
        for ref in ("azureIdentityRef", "azureBindingRef"):
            node = d.schema_at(assigned, f"spec.{ref}")
            self.assertIs(node.get("x-kubernetes-embedded-resource"), True, ref)

    def test_nmid_additions(self):
        for kind, path in (("AzureIdentity", "spec.objectID"),
                           ("AzureAssignedIdentity", "spec.azureIdentityRef.spec.objectID")):
            self.assertEqual(d.schema_at(self.crds[kind], path).get("type"), "string")

    def test_unused_metadata_objects_keep_their_content(self):
        # MIC writes `metadata: {creationTimestamp: null}` into every spec and status.
        for kind, table in FIELDS.items():
            for path in table:
                if path.endswith(".metadata"):
                    with self.subTest(kind=kind, field=path):
                        node = d.schema_at(self.crds[kind], path)
                        self.assertIs(node.get("x-kubernetes-preserve-unknown-fields"), True)

    def test_schemas_are_structural(self):
        for kind, crd in self.crds.items():
            (version,) = crd["spec"]["versions"]
            self.assertEqual(d.structural_errors(version["schema"]["openAPIV3Schema"]), [], kind)

    def test_structural_check_catches_untyped_fields(self):
        # The check above must be able to fail.
        bad = {"type": "object", "properties": {"spec": {"properties": {"a": {}}}}}
        self.assertEqual(len(d.structural_errors(bad)), 2)


class ObjectsValidate(unittest.TestCase):
    def setUp(self):
        self.validators = {kind: d.validator_for(crd) for kind, crd in d.crds().items()}

    def errors(self, obj):
        validator = self.validators[obj["kind"]]
        return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in validator.iter_errors(obj)]

    def assertValid(self, obj, where):
        self.assertEqual(self.errors(obj), [], where)

    def aad_objects(self, path):
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            objects = doc.get("items", [doc]) if isinstance(doc, dict) else doc
        else:
            objects = d.load_docs(path)
        return [o for o in objects if o.get("apiVersion", "").startswith(GROUP + "/")]

    def test_example_and_standalone_objects_validate(self):
        paths = d.example_files() + d.manifest_files() + [
            os.path.join(d.DEPLOY, "standalone", "crds.yaml"),
            # `kubectl get -o json` output from a live aad-pod-identity cluster's objects.
            os.path.join(d.ROOT, "tests", "support", "fixtures", "crds_kubectl_list.json"),
        ]
        seen = set()
        for path in paths:
            for obj in self.aad_objects(path):
                seen.add(obj["kind"])
                with self.subTest(file=os.path.relpath(path, d.ROOT),
                                  name=obj["metadata"]["name"]):
                    self.assertValid(obj, path)
        self.assertEqual(seen, set(self.validators), "every kind checked at least once")

    def test_objects_as_aad_pod_identity_writes_them_validate(self):
        self.assertValid(ASSIGNED, "AzureAssignedIdentity")
        self.assertValid(SERVICE_PRINCIPAL, "AzureIdentity type 1")
        self.assertValid(_with(SERVICE_PRINCIPAL, "spec.auxiliaryTenantIDs", None), "nullable")
        self.assertValid(_with(SERVICE_PRINCIPAL, "spec.objectID", "0000"), "nmid's objectID")

    def test_wrong_objects_fail(self):
        identity = d.find(d.all_objects(d.example_files()), "AzureIdentity")
        binding = d.find(d.all_objects(d.example_files()), "AzureIdentityBinding")
        exception = d.find(d.all_objects(d.manifest_files()), "AzurePodIdentityException")
        cases = [
            ("type as a string", _with(identity, "spec.type", "0"), "spec.type"),
            ("clientID as a number", _with(identity, "spec.clientID", 12), "spec.clientID"),
            ("misspelt field", _with(identity, "spec.clientId", "x"), "spec"),
            ("pre-1.6 field name at the top", _with(identity, "Spec", {}), "<root>"),
            ("replicas beyond int32", _with(identity, "spec.replicas", 2 ** 31), "spec.replicas"),
            ("aux tenants not a list", _with(identity, "spec.auxiliaryTenantIDs", "t"),
             "spec.auxiliaryTenantIDs"),
            ("secret reference as a string", _with(identity, "spec.clientPassword", "s"),
             "spec.clientPassword"),
            ("selector as a list", _with(binding, "spec.selector", ["a"]), "spec.selector"),
            ("label value not a string",
             _with(exception, "spec.podLabels", {"kubernetes.azure.com/managedby": 1}),
             "spec.podLabels.kubernetes.azure.com/managedby"),
            ("no name", _with(identity, "metadata", {"namespace": "default"}), "metadata"),
            ("field inside a secret reference",
             _with(identity, "spec.clientPassword", {"name": "s", "key": "k"}),
             "spec.clientPassword"),
            ("embedded identity type as a string",
             _with(ASSIGNED, "spec.azureIdentityRef.spec.type", "zero"),
             "spec.azureIdentityRef.spec.type"),
            ("assignment state as a number", _with(ASSIGNED, "status.status", 2),
             "status.status"),
        ]
        for what, obj, path in cases:
            with self.subTest(what):
                errors = self.errors(obj)
                self.assertTrue(errors, f"{what}: accepted")
                self.assertTrue(any(e.startswith(path + ":") for e in errors),
                                f"{what}: errors elsewhere: {errors}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
