#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "nmid/config/config.hpp"

// One row per effective flag: every flag of the table sets the field it says it sets.
namespace nmid::config {
namespace {

using namespace std::chrono_literals;
using test::joined;
using test::parse_args;

struct SetRow {
    std::string flag;  // the flag this row covers (checked against the flag table)
    std::vector<std::string> args;
    std::function<void(const Config&)> expect;
};

std::vector<SetRow> set_rows() {
    return {
        {"nmi-listen-address",
         {"--nmi-listen-address=0.0.0.0"},
         [](const Config& c) { EXPECT_EQ(c.server.address, "0.0.0.0"); }},
        {"nmi-listen-address",
         {"--nmi-listen-address=::1"},
         [](const Config& c) { EXPECT_EQ(c.server.address, "::1"); }},
        {"nmi-port", {"--nmi-port=8081"}, [](const Config& c) { EXPECT_EQ(c.server.port, 8081); }},
        {"nmi-port", {"--nmi-port=0"}, [](const Config& c) { EXPECT_EQ(c.server.port, 0); }},
        {"nmi-port",
         {"--nmi-port=65535"},
         [](const Config& c) { EXPECT_EQ(c.server.port, 65535); }},
        {"metadata-ip",
         {"--metadata-ip=127.0.0.9"},
         [](const Config& c) { EXPECT_EQ(c.upstream.metadata_ip, "127.0.0.9"); }},
        {"metadata-port",
         {"--metadata-port=8089"},
         [](const Config& c) { EXPECT_EQ(c.upstream.metadata_port, 8089); }},
        {"node",
         {"--node=aks-node-1"},
         [](const Config& c) { EXPECT_EQ(c.node_name, "aks-node-1"); }},
        {"ipt-update-interval-sec",
         {"--ipt-update-interval-sec=30"},
         [](const Config& c) { EXPECT_EQ(c.iptables.update_interval, 30s); }},
        {"forceNamespaced",
         {"--forceNamespaced"},
         [](const Config& c) { EXPECT_TRUE(c.identity.force_namespaced); }},
        {"MICNamespace",
         {"--MICNamespace=kube-system"},
         [](const Config& c) { EXPECT_EQ(c.identity.mic_namespace, "kube-system"); }},
        {"node-condition",
         {"--node-condition"},
         [](const Config& c) { EXPECT_TRUE(c.node_condition); }},
        {"debug-address",
         {"--debug-address=127.0.0.1:9999"},
         [](const Config& c) { EXPECT_EQ(c.admin.debug_address, "127.0.0.1:9999"); }},
        {"debug-address",
         {"--debug-address=[::1]:8086"},
         [](const Config& c) { EXPECT_EQ(c.admin.debug_address, "[::1]:8086"); }},
        {"debug-address",
         {"--debug-address="},
         [](const Config& c) { EXPECT_EQ(c.admin.debug_address, ""); }},
        {"http-probe-port",
         {"--http-probe-port=8085"},
         [](const Config& c) { EXPECT_EQ(c.admin.probe_port, 8085); }},
        {"retry-attempts-for-created",
         {"--retry-attempts-for-created=0"},
         [](const Config& c) { EXPECT_EQ(c.identity.retry_attempts_for_created, 0); }},
        {"retry-attempts-for-assigned",
         {"--retry-attempts-for-assigned=7"},
         [](const Config& c) { EXPECT_EQ(c.identity.retry_attempts_for_assigned, 7); }},
        {"find-identity-retry-interval",
         {"--find-identity-retry-interval=2"},
         [](const Config& c) { EXPECT_EQ(c.identity.find_identity_retry_interval, 2s); }},
        {"enableProfile",
         {"--enableProfile"},
         [](const Config& c) { EXPECT_TRUE(c.enable_profile); }},
        {"enableScaleFeatures",
         {"--enableScaleFeatures=false"},
         [](const Config& c) { EXPECT_FALSE(c.enable_scale_features); }},
        {"block-instance-metadata",
         {"--block-instance-metadata"},
         [](const Config& c) { EXPECT_TRUE(c.handlers.block_instance_metadata); }},
        {"metadata-header-required",
         {"--metadata-header-required=false"},
         [](const Config& c) { EXPECT_FALSE(c.handlers.metadata_header_required); }},
        {"prometheus-port",
         {"--prometheus-port=9100"},
         [](const Config& c) { EXPECT_EQ(c.admin.prometheus_port, 9100); }},
        {"operation-mode",
         {"--operation-mode=managed"},
         [](const Config& c) { EXPECT_EQ(c.identity.mode, OperationMode::managed); }},
        {"operation-mode",
         {"--operation-mode=MANAGED"},
         [](const Config& c) { EXPECT_EQ(c.identity.mode, OperationMode::managed); }},
        {"operation-mode",
         {"--operation-mode=Standard"},
         [](const Config& c) { EXPECT_EQ(c.identity.mode, OperationMode::standard); }},
        {"allow-network-plugin-kubenet",
         {"--allow-network-plugin-kubenet"},
         [](const Config& c) { EXPECT_TRUE(c.allow_network_plugin_kubenet); }},
        {"kubelet-config",
         {"--kubelet-config=/host/etc/default/kubelet"},
         [](const Config& c) { EXPECT_EQ(c.kubelet_config, "/host/etc/default/kubelet"); }},
        {"set-retry-after-header",
         {"--set-retry-after-header"},
         [](const Config& c) { EXPECT_TRUE(c.handlers.set_retry_after_header); }},
        {"enable-conntrack-deletion",
         {"--enable-conntrack-deletion=false"},
         [](const Config& c) { EXPECT_FALSE(c.iptables.enable_conntrack_deletion); }},
        {"log-format",
         {"--log-format=json"},
         [](const Config& c) { EXPECT_EQ(c.log.format, LogFormat::json); }},
        {"custom-user-agent",
         {"--custom-user-agent=acme/1.0"},
         [](const Config& c) {
             EXPECT_EQ(c.custom_user_agent, "acme/1.0");
             EXPECT_EQ(c.upstream.user_agent, "nmid");
         }},
        {"v", {"--v=4"}, [](const Config& c) { EXPECT_EQ(c.klog_verbosity, 4); }},
        {"pods-file",
         {"--pods-file=/tmp/pods.json"},
         [](const Config& c) { EXPECT_EQ(c.pods.pods_file, "/tmp/pods.json"); }},
        {"crds-file",
         {"--crds-file=/tmp/crds.yaml"},
         [](const Config& c) { EXPECT_EQ(c.crds.crds_file, "/tmp/crds.yaml"); }},
        {"manage-iptables",
         {"--manage-iptables=false"},
         [](const Config& c) { EXPECT_FALSE(c.iptables.manage); }},
        {"io-threads", {"--io-threads=8"}, [](const Config& c) { EXPECT_EQ(c.io_threads, 8); }},
        {"io-threads", {"--io-threads=64"}, [](const Config& c) { EXPECT_EQ(c.io_threads, 64); }},
        {"log-level",
         {"--log-level=debug"},
         [](const Config& c) { EXPECT_EQ(c.log.level, "debug"); }},
        {"log-level", {"--log-level=off"}, [](const Config& c) { EXPECT_EQ(c.log.level, "off"); }},
        {"shutdown-grace",
         {"--shutdown-grace=1m30s"},
         [](const Config& c) { EXPECT_EQ(c.shutdown_grace, 90s); }},
        {"shutdown-grace",
         {"--shutdown-grace=0"},
         [](const Config& c) { EXPECT_EQ(c.shutdown_grace, 0ms); }},
        {"token-refresh-margin",
         {"--token-refresh-margin=10m"},
         [](const Config& c) { EXPECT_EQ(c.cache.refresh_margin, 600s); }},
        {"token-negative-ttl",
         {"--token-negative-ttl=250ms"},
         [](const Config& c) { EXPECT_EQ(c.cache.negative_ttl, 250ms); }},
        {"token-cache-max-entries",
         {"--token-cache-max-entries=50"},
         [](const Config& c) { EXPECT_EQ(c.cache.max_entries, 50U); }},
        {"bypass-cache-min-interval",
         {"--bypass-cache-min-interval=1m"},
         [](const Config& c) { EXPECT_EQ(c.cache.bypass_min_interval, 60s); }},
        {"bypass-cache-min-interval",
         {"--bypass-cache-min-interval=0"},
         [](const Config& c) { EXPECT_EQ(c.cache.bypass_min_interval, 0s); }},
        {"token-fetch-deadline",
         {"--token-fetch-deadline=3s"},
         [](const Config& c) { EXPECT_EQ(c.cache.fetch_deadline, 3s); }},
        {"token-min-remaining",
         {"--token-min-remaining=2m"},
         [](const Config& c) { EXPECT_EQ(c.cache.min_remaining_lifetime, 120s); }},
        {"upstream-max-concurrency",
         {"--upstream-max-concurrency=3"},
         [](const Config& c) { EXPECT_EQ(c.cache.max_concurrency, 3U); }},
        {"upstream-rate-limit",
         {"--upstream-rate-limit=12.5"},
         [](const Config& c) { EXPECT_DOUBLE_EQ(c.cache.rate_per_second, 12.5); }},
        {"upstream-connect-timeout",
         {"--upstream-connect-timeout=750ms"},
         [](const Config& c) { EXPECT_EQ(c.upstream.connect_timeout, 750ms); }},
        {"proxy-timeout",
         {"--proxy-timeout=20s"},
         [](const Config& c) { EXPECT_EQ(c.upstream.proxy_timeout, 20s); }},
        {"max-connections",
         {"--max-connections=100"},
         [](const Config& c) { EXPECT_EQ(c.server.max_connections, 100U); }},
        {"max-connections-per-pod",
         {"--max-connections-per-pod=0"},
         [](const Config& c) { EXPECT_EQ(c.server.max_connections_per_pod, 0U); }},
        {"read-timeout",
         {"--read-timeout=5s"},
         [](const Config& c) { EXPECT_EQ(c.server.read_timeout, 5s); }},
        {"idle-timeout",
         {"--idle-timeout=1h"},
         [](const Config& c) { EXPECT_EQ(c.server.idle_timeout, 3600s); }},
        {"pod-poll-interval",
         {"--pod-poll-interval=2s"},
         [](const Config& c) { EXPECT_EQ(c.pods.poll_interval, 2s); }},
        {"pod-refresh-deadline",
         {"--pod-refresh-deadline=500ms"},
         [](const Config& c) { EXPECT_EQ(c.pods.refresh_deadline, 500ms); }},
        {"crd-poll-interval",
         {"--crd-poll-interval=10s"},
         [](const Config& c) { EXPECT_EQ(c.crds.poll_interval, 10s); }},
        {"iptables-backend",
         {"--iptables-backend=legacy"},
         [](const Config& c) { EXPECT_EQ(c.iptables.backend, "legacy"); }},
        {"iptables-backend",
         {"--iptables-backend", "nft"},
         [](const Config& c) { EXPECT_EQ(c.iptables.backend, "nft"); }},
        {"set-route-localnet",
         {"--set-route-localnet"},
         [](const Config& c) { EXPECT_TRUE(c.iptables.set_route_localnet); }},
        {"cleanup-rules-on-exit",
         {"--cleanup-rules-on-exit"},
         [](const Config& c) { EXPECT_TRUE(c.iptables.cleanup_on_exit); }},
        {"kubeconfig",
         {"--kubeconfig=/etc/kube/config"},
         [](const Config& c) { EXPECT_EQ(c.kubeconfig, "/etc/kube/config"); }},
        {"aad-ca-file",
         {"--aad-ca-file=/etc/ssl/private-ca.pem"},
         [](const Config& c) { EXPECT_EQ(c.aad_ca_file, "/etc/ssl/private-ca.pem"); }},
        {"pod-source",
         {"--pod-source=apiserver"},
         [](const Config& c) { EXPECT_EQ(c.pods.source, "apiserver"); }},
        {"kubelet-url",
         {"--kubelet-url=http://10.0.0.4:10255"},
         [](const Config& c) { EXPECT_EQ(c.pods.kubelet_url, "http://10.0.0.4:10255"); }},
        {"kubelet-ca-file",
         {"--kubelet-ca-file=/etc/kubernetes/kubelet-ca.crt"},
         [](const Config& c) {
             EXPECT_EQ(c.pods.kubelet_ca_file, "/etc/kubernetes/kubelet-ca.crt");
         }},
        {"kubelet-insecure-tls",
         {"--kubelet-insecure-tls"},
         [](const Config& c) { EXPECT_TRUE(c.pods.kubelet_insecure_tls); }},
        {"kubelet-poll-interval",
         {"--kubelet-poll-interval=400ms"},
         [](const Config& c) { EXPECT_EQ(c.pods.kubelet_poll_interval, 400ms); }},
        {"pod-freshness",
         {"--pod-freshness=2s"},
         [](const Config& c) { EXPECT_EQ(c.pods.freshness, 2s); }},
        {"pod-freshness",
         {"--pod-freshness=0"},
         [](const Config& c) { EXPECT_EQ(c.pods.freshness, 0ms); }},
        // Issue 11: identity validation and CRD staleness.
        {"allow-cross-namespace-secrets",
         {"--allow-cross-namespace-secrets"},
         [](const Config& c) { EXPECT_TRUE(c.crds.allow_cross_namespace_secrets); }},
        {"aad-authority-allowlist",
         {"--aad-authority-allowlist=127.0.0.1:8443,login.contoso.example"},
         [](const Config& c) {
             EXPECT_EQ(c.crds.aad_authority_allowlist, "127.0.0.1:8443,login.contoso.example");
         }},
        // Issue 11: token cache per-pod fairness.
        {"token-cache-max-bytes",
         {"--token-cache-max-bytes=1048576"},
         [](const Config& c) { EXPECT_EQ(c.cache.max_bytes, 1'048'576U); }},
        {"max-tokens-per-pod",
         {"--max-tokens-per-pod=8"},
         [](const Config& c) { EXPECT_EQ(c.cache.max_tokens_per_pod, 8U); }},
        {"max-upstream-fetches-per-pod",
         {"--max-upstream-fetches-per-pod=1"},
         [](const Config& c) { EXPECT_EQ(c.cache.max_upstream_fetches_per_pod, 1U); }},
        {"max-pending-fetches-per-pod",
         {"--max-pending-fetches-per-pod=4"},
         [](const Config& c) { EXPECT_EQ(c.cache.max_pending_fetches_per_pod, 4U); }},
        {"crd-max-staleness",
         {"--crd-max-staleness=10m"},
         [](const Config& c) { EXPECT_EQ(c.crds.max_staleness, 600s); }},
        // Issue 12: workload identity.
        {"workload-identity",
         {"--workload-identity"},
         [](const Config& c) { EXPECT_TRUE(c.workload.enabled); }},
        {"workload-identity-tenant-id",
         {"--workload-identity-tenant-id=72f988bf-86f1-41af-91ab-2d7cd011db47"},
         [](const Config& c) {
             EXPECT_EQ(c.workload.tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
         }},
        {"workload-identity-authority-host",
         {"--workload-identity-authority-host=https://login.microsoftonline.us/"},
         [](const Config& c) {
             EXPECT_EQ(c.workload.authority_host, "https://login.microsoftonline.us/");
         }},
        {"workload-identity-token-source",
         {"--workload-identity-token-source=projected"},
         [](const Config& c) { EXPECT_EQ(c.workload.token_source, "projected"); }},
        {"kubelet-root-dir",
         {"--kubelet-root-dir=/var/lib/k0s/kubelet"},
         [](const Config& c) { EXPECT_EQ(c.workload.kubelet_root_dir, "/var/lib/k0s/kubelet"); }},
        {"workload-identity-max-concurrency",
         {"--workload-identity-max-concurrency=3"},
         [](const Config& c) { EXPECT_EQ(c.workload.max_concurrency, 3U); }},
        {"workload-identity-rate-limit",
         {"--workload-identity-rate-limit=2.5"},
         [](const Config& c) { EXPECT_DOUBLE_EQ(c.workload.rate_per_second, 2.5); }},
    };
}

TEST(ConfigParse, EveryFlagSetsItsField) {
    for (const SetRow& row : set_rows()) {
        SCOPED_TRACE(joined(row.args));
        const ParseResult result = parse_args(row.args);
        ASSERT_EQ(result.action, Action::run) << result.error;
        row.expect(result.config);
    }
}

TEST(ConfigParse, EveryEffectiveFlagHasASetRow) {
    std::set<std::string> covered;
    for (const SetRow& row : set_rows()) {
        covered.insert(row.flag);
    }
    for (const FlagInfo& flag : flags()) {
        // help and version are actions (tested below); ignored flags have no field.
        if (flag.ignored || flag.name == "help" || flag.name == "version") {
            continue;
        }
        EXPECT_TRUE(covered.contains(std::string(flag.name))) << "no row for --" << flag.name;
    }
}

TEST(ConfigParse, TheDebugListenerIsOnLoopbackByDefaultAndTakesOnlyLiteralEndpoints) {
    EXPECT_EQ(parse_args({}).config.admin.debug_address, "127.0.0.1:8086");
    for (const std::string bad : {"localhost:8086", "127.0.0.1", "127.0.0.1:65536", "::1:8086",
                                  "[127.0.0.1]:8086", "[::1:8086", "127.0.0.1:80x", ":8086"}) {
        SCOPED_TRACE(bad);
        const auto r = parse_args({"--debug-address=" + bad});
        EXPECT_EQ(r.action, Action::error);
        EXPECT_NE(r.error.find("not IP:PORT or [IPv6]:PORT"), std::string::npos) << r.error;
    }
}

TEST(ConfigParse, TheDebugListenerNeverSharesAPortWithTheOthers) {
    for (const std::string other :
         {"--http-probe-port=8086", "--prometheus-port=8086", "--nmi-port=8086"}) {
        SCOPED_TRACE(other);
        const auto r = parse_args({other});
        EXPECT_EQ(r.action, Action::error);
        EXPECT_NE(r.error.find("--debug-address 127.0.0.1:8086 uses the port of"),
                  std::string::npos)
            << r.error;
        EXPECT_EQ(parse_args({other, "--debug-address=127.0.0.1:8087"}).action, Action::run);
        EXPECT_EQ(parse_args({other, "--debug-address="}).action, Action::run);
    }
    // Port 0 (the OS picks) never collides.
    EXPECT_EQ(parse_args({"--http-probe-port=0", "--debug-address=127.0.0.1:0"}).action,
              Action::run);
}

TEST(ConfigParse, WorkloadIdentityIsOffByDefaultAndTakesTheWebhookVariables) {
    const Config defaults = parse_args({}).config;
    EXPECT_FALSE(defaults.workload.enabled);
    EXPECT_EQ(defaults.workload.tenant_id, "");
    EXPECT_EQ(defaults.workload.authority_host, "https://login.microsoftonline.com/");
    EXPECT_EQ(defaults.workload.token_source, "tokenrequest");
    EXPECT_EQ(defaults.workload.kubelet_root_dir, "/var/lib/kubelet");

    const test::Env env{{"AZURE_TENANT_ID", "tenant-a"},
                        {"AZURE_AUTHORITY_HOST", "https://login.chinacloudapi.cn/"}};
    const Config from_env = parse_args({}, env).config;
    EXPECT_EQ(from_env.workload.tenant_id, "tenant-a");
    EXPECT_EQ(from_env.workload.authority_host, "https://login.chinacloudapi.cn/");
    // Flags win over the environment; an empty AZURE_AUTHORITY_HOST keeps the default.
    const Config flags = parse_args({"--workload-identity-tenant-id=tenant-b"}, env).config;
    EXPECT_EQ(flags.workload.tenant_id, "tenant-b");
    EXPECT_EQ(parse_args({}, {{"AZURE_AUTHORITY_HOST", ""}}).config.workload.authority_host,
              "https://login.microsoftonline.com/");
}

TEST(ConfigParse, WorkloadIdentityTokenSourceIsOneOfTwo) {
    const ParseResult bad = parse_args({"--workload-identity-token-source=file"});
    EXPECT_EQ(bad.action, Action::error);
    EXPECT_NE(bad.error.find("tokenrequest, projected"), std::string::npos) << bad.error;
}

}  // namespace
}  // namespace nmid::config
