// DEPS: nmid_pods
// Parsing a kubelet `/pods` body: 250 pods of ~3 KB each (containers, env, mounts, managed
// fields, conditions, container statuses), as a busy node returns it on every poll.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>
#include <string>

#include "nmid/pods/pod_list_json.hpp"

namespace {

std::string pod_json(int i) {
    const std::string n = std::to_string(i);
    const std::string ip = "10.244." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 2);
    const std::string name = "app-" + n + "-7d9f6c5b8-x2k4p";
    std::string env;
    for (int e = 0; e < 8; ++e) {
        env += R"({"name":"SETTING_)" + std::to_string(e) + R"(","value":"value-)" +
               std::to_string(e * i) + R"("},)";
    }
    env +=
        R"({"name":"POD_IP","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"status.podIP"}}})";
    return R"({"metadata":{"name":")" + name + R"(","generateName":"app-)" + n +
           R"(-7d9f6c5b8-","namespace":"team-)" + std::to_string(i % 7) +
           R"(","uid":"5f1c2b8e-8d0b-4c1f-9a44-)" + std::to_string(100000000000 + i) +
           R"(","resourceVersion":")" + std::to_string(4731 + i) + R"(","creationTimestamp":"2024-05-02T10:00:00Z","labels":{"aadpodidbinding":"reader-)" + std::to_string(i % 5) + R"(","app":"app-)" + n + R"(","pod-template-hash":"7d9f6c5b8","version":"v1.2.3"},"annotations":{"kubernetes.io/config.seen":"2024-05-02T10:00:01.123456789Z","kubernetes.io/config.source":"api","prometheus.io/scrape":"true","prometheus.io/port":"9090"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"app-)" + n + R"(-7d9f6c5b8","uid":"0c9d4a57-5b0e-4a5c-9b36-0d1c7f2e6a10","controller":true,"blockOwnerDeletion":true}],"managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2024-05-02T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"0c9d4a57\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:env":{},"f:image":{},"f:name":{}}}}}},{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2024-05-02T10:00:05Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:conditions":{},"f:containerStatuses":{},"f:podIP":{},"f:podIPs":{}}},"subresource":"status"}]},"spec":{"volumes":[{"name":"kube-api-access-abcde","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},{"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}],"defaultMode":420}}],"containers":[{"name":"app","image":"registry.example.com/team/app:1.2.3","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},{"name":"metrics","containerPort":9090,"protocol":"TCP"}],"env":[)" +
           env +
           R"(],"resources":{"limits":{"cpu":"500m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},"volumeMounts":[{"name":"kube-api-access-abcde","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],"livenessProbe":{"httpGet":{"path":"/healthz","port":8080,"scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"app-)" +
           n + R"(","serviceAccount":"app-)" + n +
           R"(","nodeName":"aks-nodepool1-12345678-vmss000000","securityContext":{},"schedulerName":"default-scheduler","tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],"priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},"status":{"phase":"Running","conditions":[{"type":"Initialized","status":"True","lastProbeTime":null,"lastTransitionTime":"2024-05-02T10:00:03Z"},{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2024-05-02T10:00:05Z"},{"type":"ContainersReady","status":"True","lastProbeTime":null,"lastTransitionTime":"2024-05-02T10:00:05Z"},{"type":"PodScheduled","status":"True","lastProbeTime":null,"lastTransitionTime":"2024-05-02T10:00:00Z"}],"hostIP":"10.240.0.4","podIP":")" +
           ip + R"(","podIPs":[{"ip":")" + ip +
           R"("}],"startTime":"2024-05-02T10:00:03Z","containerStatuses":[{"name":"app","state":{"running":{"startedAt":"2024-05-02T10:00:04Z"}},"lastState":{},"ready":true,"restartCount":0,"image":"registry.example.com/team/app:1.2.3","imageID":"registry.example.com/team/app@sha256:2b7412e6465c3c7fc5bb21d3e6f1917c167358449fecac8176c6e496e5c1f05f","containerID":"containerd://8d1d3c4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c","started":true}],"qosClass":"Burstable"}})";
}

const std::string& kubelet_body() {
    static const std::string body = [] {
        std::string s = R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[)";
        for (int i = 0; i < 250; ++i) {
            if (i > 0) {
                s += ',';
            }
            s += pod_json(i);
        }
        s += "]}";
        return s;
    }();
    return body;
}

void BM_ParsePodList250(benchmark::State& state) {
    const std::string& body = kubelet_body();
    if (auto check = nmid::parse_pod_list(body); !check || check->pods.size() != 250) {
        state.SkipWithError("generated body does not parse to 250 pods");
        return;
    }
    for (auto _ : state) {
        auto r = nmid::parse_pod_list(body);
        benchmark::DoNotOptimize(r);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
    state.counters["bytes_per_pod"] = static_cast<double>(body.size()) / 250.0;
}
BENCHMARK(BM_ParsePodList250)->Unit(benchmark::kMillisecond);

// Baseline: a full nlohmann DOM of the same body, what a naive parse would pay.
void BM_NlohmannFullDom250(benchmark::State& state) {
    const std::string& body = kubelet_body();
    for (auto _ : state) {
        auto j = nlohmann::json::parse(body, nullptr, false);
        benchmark::DoNotOptimize(j);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_NlohmannFullDom250)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
