#!/usr/bin/env python3
"""deploy/optional/node-condition.yaml (issue 13 item 4): its RBAC is exactly the patch nmid
sends, and its ValidatingAdmissionPolicy's CEL, run by cel-python, admits nmid's own patch of
its own node (the Node after the strategic merge nmid's status_patch() produces) and refuses
every other change, each with the validation meant for it. The NodeReadinessRule waits for
NmidReady=True. Skips (exit 77) with what to install when cel-python is missing."""

import copy
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cellib  # noqa: E402

cellib.require_cel(__file__)

NMID_USER = "system:serviceaccount:kube-system:nmid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"

# A Node as the kubelet keeps it, nmid's condition False.
OLD_NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "node-1", "labels": {"kubernetes.io/os": "linux"},
                 "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
    "status": {
        "addresses": [{"type": "InternalIP", "address": "10.240.0.4"},
                      {"type": "Hostname", "address": "node-1"}],
        "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "1900m", "memory": "6Gi", "pods": "110"},
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"kubeletVersion": "v1.31.2", "machineID": "abc"},
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
            {"type": "NmidReady", "status": "False", "reason": "NmidNotReady",
             "message": "nmid is not ready: crds: not ready"},
        ],
    },
}


def nmid_patched(old=OLD_NODE):
    """`old` after nmid's strategic merge patch (merge key `type`) setting NmidReady=True."""
    node = copy.deepcopy(old)
    for c in node["status"]["conditions"]:
        if c["type"] == "NmidReady":
            c.update(status="True", reason="NmidReady", message="nmid is ready",
                     lastHeartbeatTime="2026-12-06T17:00:00Z",
                     lastTransitionTime="2026-12-06T17:00:00Z")
    return node


def request(user=NMID_USER, node_names=("node-1",)):
    extra = {} if node_names is None else {NODE_NAME_KEY: list(node_names)}
    return {"name": "node-1", "subResource": "status", "operation": "UPDATE",
            "userInfo": {"username": user, "groups": [], "extra": extra}}


class Policy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = cellib.load_optional("node-condition.yaml")
        cls.by_kind = {d["kind"]: d for d in cls.docs}
        cls.policy = cellib.PolicyEvaluator(cls.by_kind["ValidatingAdmissionPolicy"])

    def failing(self, new, req=None, old=OLD_NODE):
        return self.policy.failing(new, req or request(), old)

    def test_nmids_own_patch_of_its_own_node_is_admitted(self):
        self.assertEqual(self.failing(nmid_patched()), [])
        # The first write adds the condition.
        first = copy.deepcopy(OLD_NODE)
        first["status"]["conditions"] = first["status"]["conditions"][:1]
        added = copy.deepcopy(first)
        added["status"]["conditions"].append(
            {"type": "NmidReady", "status": "False", "reason": "NmidNotReady"})
        self.assertEqual(self.failing(added, old=first), [])

    def test_every_other_change_is_refused_by_the_rule_meant_for_it(self):
        own_node, conditions, status_fields, metadata = 0, 1, 2, 3

        def edited(edit):
            node = nmid_patched()
            edit(node)
            return node

        cases = {
            "another node's status": (edited(lambda n: None), request(node_names=("node-2",)),
                                      own_node),
            "a token without node binding": (edited(lambda n: None), request(node_names=None),
                                             own_node),
            "two node names": (edited(lambda n: None), request(node_names=("node-1", "node-1")),
                               own_node),
            "kubelet's Ready changed": (
                edited(lambda n: n["status"]["conditions"][0].update(status="False")),
                request(), conditions),
            "a condition added": (
                edited(lambda n: n["status"]["conditions"].append(
                    {"type": "NetworkUnavailable", "status": "True"})), request(), conditions),
            "a condition removed": (
                edited(lambda n: n["status"]["conditions"].pop(0)), request(), conditions),
            "addresses changed": (
                edited(lambda n: n["status"]["addresses"][0].update(address="10.0.0.99")),
                request(), status_fields),
            "capacity changed": (
                edited(lambda n: n["status"]["capacity"].update(pods="500")), request(),
                status_fields),
            "allocatable removed": (
                edited(lambda n: n["status"].pop("allocatable")), request(), status_fields),
            "kubelet endpoint moved": (
                edited(lambda n: n["status"]["daemonEndpoints"]["kubeletEndpoint"].update(
                    Port=1)), request(), status_fields),
            "node info changed": (
                edited(lambda n: n["status"]["nodeInfo"].update(kubeletVersion="v9")),
                request(), status_fields),
            "a label added": (
                edited(lambda n: n["metadata"]["labels"].update(
                    {"node-role.kubernetes.io/control-plane": ""})), request(), metadata),
            "annotations dropped": (
                edited(lambda n: n["metadata"].pop("annotations")), request(), metadata),
        }
        for name, (new, req, rule) in cases.items():
            with self.subTest(name):
                self.assertEqual(self.failing(new, req), [rule])

    def test_other_users_are_not_matched(self):
        moved = nmid_patched()
        moved["status"]["addresses"] = []
        self.assertIsNone(self.failing(moved, request(user="system:node:node-1")))
        self.assertIsNone(self.failing(moved, request(
            user="system:serviceaccount:kube-system:other")))

    def test_every_refusal_is_forbidden_with_a_message(self):
        for v in self.by_kind["ValidatingAdmissionPolicy"]["spec"]["validations"]:
            self.assertEqual(v["reason"], "Forbidden")
            self.assertTrue(v["message"].startswith("nmid"))

    def test_policy_matches_status_updates_and_is_bound_to_deny(self):
        spec = self.by_kind["ValidatingAdmissionPolicy"]["spec"]
        self.assertEqual(spec["failurePolicy"], "Fail")
        self.assertEqual(spec["matchConstraints"]["resourceRules"], [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
            "resources": ["nodes/status"]}])
        binding = self.by_kind["ValidatingAdmissionPolicyBinding"]
        self.assertEqual(binding["spec"]["policyName"],
                         self.by_kind["ValidatingAdmissionPolicy"]["metadata"]["name"])
        self.assertEqual(binding["spec"]["validationActions"], ["Deny"])

    def test_rbac_is_exactly_the_status_patch(self):
        role = self.by_kind["ClusterRole"]
        self.assertEqual(role["rules"], [
            {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}])
        binding = self.by_kind["ClusterRoleBinding"]
        self.assertEqual(binding["roleRef"]["name"], role["metadata"]["name"])
        self.assertEqual(binding["subjects"], [
            {"kind": "ServiceAccount", "name": "nmid", "namespace": "kube-system"}])

    def test_the_readiness_rule_waits_for_nmid_ready(self):
        rule = self.by_kind["NodeReadinessRule"]
        self.assertEqual(rule["apiVersion"], "readiness.node.x-k8s.io/v1alpha1")
        self.assertEqual(rule["spec"]["conditions"],
                         [{"type": "NmidReady", "requiredStatus": "True"}])
        self.assertEqual(rule["spec"]["taint"]["effect"], "NoSchedule")
        self.assertEqual(rule["spec"]["enforcementMode"], "continuous")


if __name__ == "__main__":
    unittest.main(verbosity=2)
