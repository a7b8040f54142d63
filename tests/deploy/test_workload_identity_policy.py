#!/usr/bin/env python3
"""deploy/optional/workload-identity.yaml (issue 12 item 6): its RBAC is exactly what the
tokenrequest source needs, and its ValidatingAdmissionPolicy's CEL, run by a real CEL evaluator
(cel-python), admits exactly the TokenRequest nmid sends and refuses every other shape, each
with the validation meant for it. Skips (exit 77) with what to install when cel-python is
missing."""

import copy
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cellib  # noqa: E402

cellib.require_cel(__file__)

NMID_USER = "system:serviceaccount:kube-system:nmid"

# The TokenRequest nmid sends (daemon/workload/token_request.cpp), as admission sees it.
NMID_REQUEST = {
    "apiVersion": "authentication.k8s.io/v1",
    "kind": "TokenRequest",
    "spec": {
        "audiences": ["api://AzureADTokenExchange"],
        "expirationSeconds": 3600,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0",
                           "uid": "0f0e0d0c-0b0a-4009-8807-060504030201"},
    },
}


def changed(edit):
    body = copy.deepcopy(NMID_REQUEST)
    edit(body["spec"])
    return body


class Policy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = cellib.load_optional("workload-identity.yaml")
        cls.by_kind = {d["kind"]: d for d in cls.docs}
        cls.policy = cellib.PolicyEvaluator(cls.by_kind["ValidatingAdmissionPolicy"])

    def failing(self, obj, user=NMID_USER):
        """Indexes of the validations `obj` fails, or None when no matchCondition matches."""
        request = {"name": "web", "namespace": "shop", "subResource": "token",
                   "operation": "CREATE", "userInfo": {"username": user, "groups": []}}
        return self.policy.failing(obj, request)

    def test_nmids_own_request_is_admitted(self):
        self.assertEqual(self.failing(NMID_REQUEST), [])
        # apiVersion is optional in a boundObjectRef.
        self.assertEqual(self.failing(changed(lambda s: s["boundObjectRef"].pop("apiVersion"))),
                         [])
        self.assertEqual(self.failing(changed(lambda s: s.update(expirationSeconds=600))), [])

    def test_every_other_shape_is_refused_by_the_rule_meant_for_it(self):
        audience, bound, lifetime = 0, 1, 2
        cases = {
            "another audience": (lambda s: s.update(audiences=["https://kubernetes.default.svc"]),
                                 audience),
            "an extra audience": (lambda s: s["audiences"].append("vault"), audience),
            "no audience": (lambda s: s.pop("audiences"), audience),
            "empty audiences": (lambda s: s.update(audiences=[]), audience),
            "no boundObjectRef": (lambda s: s.pop("boundObjectRef"), bound),
            "bound to a Secret": (lambda s: s["boundObjectRef"].update(kind="Secret"), bound),
            "bound to a Node": (lambda s: s["boundObjectRef"].update(kind="Node"), bound),
            "an empty uid": (lambda s: s["boundObjectRef"].update(uid=""), bound),
            "no uid": (lambda s: s["boundObjectRef"].pop("uid"), bound),
            "no name": (lambda s: s["boundObjectRef"].pop("name"), bound),
            "another apiVersion": (lambda s: s["boundObjectRef"].update(apiVersion="v2"), bound),
            "a day": (lambda s: s.update(expirationSeconds=86400), lifetime),
            "3601 seconds": (lambda s: s.update(expirationSeconds=3601), lifetime),
            "no expirationSeconds": (lambda s: s.pop("expirationSeconds"), lifetime),
        }
        for name, (edit, rule) in cases.items():
            with self.subTest(name):
                self.assertEqual(self.failing(changed(edit)), [rule])

    def test_other_users_are_not_matched(self):
        self.assertIsNone(self.failing(changed(lambda s: s.update(audiences=["x"])),
                                       user="system:serviceaccount:kube-system:other"))
        self.assertIsNone(self.failing(NMID_REQUEST, user="system:node:node-1"))

    def test_every_refusal_is_forbidden_with_a_message(self):
        for v in self.by_kind["ValidatingAdmissionPolicy"]["spec"]["validations"]:
            self.assertEqual(v["reason"], "Forbidden")
            self.assertTrue(v["message"].startswith("nmid"))

    def test_policy_matches_token_creation_and_is_bound_to_deny(self):
        spec = self.by_kind["ValidatingAdmissionPolicy"]["spec"]
        self.assertEqual(spec["failurePolicy"], "Fail")
        self.assertEqual(spec["matchConstraints"]["resourceRules"], [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
            "resources": ["serviceaccounts/token"]}])
        binding = self.by_kind["ValidatingAdmissionPolicyBinding"]
        self.assertEqual(binding["spec"]["policyName"],
                         self.by_kind["ValidatingAdmissionPolicy"]["metadata"]["name"])
        self.assertEqual(binding["spec"]["validationActions"], ["Deny"])

    def test_rbac_is_exactly_what_the_tokenrequest_source_needs(self):
        role = self.by_kind["ClusterRole"]
        self.assertEqual(role["rules"], [
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["list", "watch"]},
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        ])
        binding = self.by_kind["ClusterRoleBinding"]
        self.assertEqual(binding["roleRef"]["name"], role["metadata"]["name"])
        self.assertEqual(binding["subjects"], [
            {"kind": "ServiceAccount", "name": "nmid", "namespace": "kube-system"}])


if __name__ == "__main__":
    unittest.main(verbosity=2)
