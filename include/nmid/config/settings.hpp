#pragma once

// Per-module settings. `config::parse` fills them from flags and environment, validates them
// once, and `app` hands each component its own struct by value (house rule R8). Defaults here
// are nmid's defaults; NMI-compatible flags keep NMI's defaults (reference nmi-behaviour 1.1).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace nmid {

using Millis = std::chrono::milliseconds;
using Seconds = std::chrono::seconds;

/// Pod-facing listener and the admin listener (module `http`).
struct HttpServerSettings {
    std::string address{"127.0.0.1"};  ///< --nmi-listen-address
    std::uint16_t port = 2579;         ///< --nmi-port (0: let the OS choose; tests)
    std::size_t max_connections = 4096;
    /// --max-connections-per-pod: open connections per source IP (0: no cap). Over it, the IP's
    /// oldest idle keep-alive connection is closed for the new one, or the new one gets 429.
    std::size_t max_connections_per_pod = 64;
    std::size_t header_limit = std::size_t{8} * 1024;
    std::size_t body_limit = std::size_t{4} * 1024;
    std::size_t pipeline_limit = 16;  ///< requests read ahead of their responses
    Millis read_timeout{10'000};      ///< to receive one whole request once it started
    Millis idle_timeout{90'000};      ///< keep-alive connection with no request
    Millis write_timeout{10'000};
    bool reuse_port = true;  ///< SO_REUSEPORT (zero-gap restart)
    /// A strand per connection, needed when several threads run the executor. With one I/O
    /// thread (the default) the app turns it off: each completion then skips the strand's
    /// queue and lock.
    bool strand_per_connection = true;
};

struct AdminSettings {
    std::string address{"0.0.0.0"};
    std::uint16_t probe_port = 8080;       ///< --http-probe-port (/healthz, /readyz)
    std::uint16_t prometheus_port = 9090;  ///< --prometheus-port (/metrics)
    /// --debug-address: the debug listener (/debug/explain), loopback only by default: it
    /// shows which pod may use which identity. "" turns it off.
    std::string debug_address{"127.0.0.1:8086"};
};

/// Calls nmid makes to IMDS itself: token fetches and the proxy (modules `net`, `cloud`).
struct UpstreamSettings {
    std::string metadata_ip{"169.254.169.254"};  ///< --metadata-ip
    std::uint16_t metadata_port = 80;            ///< --metadata-port
    Millis connect_timeout{2'000};
    Millis proxy_timeout{10'000};  ///< deadline of one proxied request
    std::size_t pool_size = 8;     ///< idle keep-alive connections kept
    std::size_t max_response_body = std::size_t{1024} * 1024;
    std::string user_agent{"nmid"};  ///< plus --custom-user-agent
};

/// Token cache (module `token`).
struct TokenCacheSettings {
    Seconds refresh_margin{300};    ///< refresh ahead at least this long before expiry
    double refresh_fraction = 0.1;  ///< ... or this fraction of the lifetime, whichever is larger
    Millis negative_ttl{5'000};     ///< remember an upstream failure this long
    Seconds max_retry_after{60};    ///< cap on an upstream Retry-After honoured
    std::size_t max_entries = 10'000;
    Seconds idle_ttl{3600};           ///< evict entries unused this long
    Millis fetch_deadline{15'000};    ///< overall deadline of one miss, retries included
    std::size_t max_concurrency = 5;  ///< IMDS: 5 concurrent identity requests per VM
    double rate_per_second = 20.0;    ///< IMDS: 20 identity requests per second per VM
    int max_attempts = 5;
    Millis backoff_base{500};
    Millis backoff_cap{8'000};
    Seconds min_remaining_lifetime{60};  ///< never serve a token with less left than this
    // Issue 11: per-pod fairness. "Pod" is the requester the caller names; the unattributed
    // requester ("") is exempt from the per-pod limits.
    /// --token-cache-max-bytes: key strings + token strings + a fixed per-entry overhead.
    std::size_t max_bytes = std::size_t{16} << 20U;
    /// --max-tokens-per-pod: distinct (identity, resource) keys one pod may have created.
    std::size_t max_tokens_per_pod = 64;
    /// --max-upstream-fetches-per-pod: upstream calls of one pod running at once (at most
    /// max_concurrency - 1, so other pods always find a slot; 0: no per-pod cap).
    std::size_t max_upstream_fetches_per_pod = 2;
    /// --max-pending-fetches-per-pod: fetches one pod started (misses) and proxied calls,
    /// queued or running; over it a miss fails at once with Errc::pod_over_limit.
    std::size_t max_pending_fetches_per_pod = 32;
    /// --bypass-cache-min-interval: one requester forces at most one upstream fetch per key
    /// (identity, resource) per interval with `bypass_cache=true` (0: every request forces).
    Seconds bypass_min_interval{300};
};

/// Pod index (module `pods`).
struct PodSettings {
    std::string pods_file;             ///< --pods-file (standalone)
    Millis poll_interval{1'000};       ///< re-read the source this often
    Millis refresh_deadline{2'000};    ///< a miss waits this long for the coalesced refresh
    Millis min_refresh_interval{100};  ///< misses within this of the last read reuse it
    /// --pod-freshness: PodIndex::find_fresh never answers from a source read that started
    /// this long or longer before the request (0: no bound). Traffic refreshes at half of it.
    Millis freshness{1'000};
    /// --kubelet-poll-interval: `app` gives it to the index as `poll_interval` when the pod
    /// source is the kubelet (the index itself reads only `poll_interval`).
    Millis kubelet_poll_interval{1'000};
    /// --pod-source: where pods come from when --pods-file is not given: "kubelet" (the
    /// node's kubelet `/pods`, polled) or "apiserver" (list+watch of this node's pods).
    std::string source{"kubelet"};
    /// --kubelet-url; default `https://$HOST_IP:10250` (config fills it from HOST_IP).
    std::string kubelet_url;
    std::string kubelet_ca_file;        ///< --kubelet-ca-file (default: the cluster CA)
    bool kubelet_insecure_tls = false;  ///< --kubelet-insecure-tls
};

/// CRD snapshot (module `crd`).
struct CrdSettings {
    std::string crds_file;        ///< --crds-file (standalone)
    Millis poll_interval{1'000};  ///< re-check the file this often
    /// --allow-cross-namespace-secrets: a service-principal AzureIdentity may name a Secret in
    /// another namespace (NMI compatibility; off by default).
    bool allow_cross_namespace_secrets = false;
    /// --aad-authority-allowlist: comma-separated `host[:port]` items allowed as adEndpoint
    /// hosts besides the Azure AD authorities (syntax: nmid/crd/identity_validation.hpp).
    std::string aad_authority_allowlist{};
    /// --crd-max-staleness: deny tokens while the identity snapshot is older than this (time
    /// since the API-server watch last confirmed it; a file is always fresh). 0: never.
    Millis max_staleness{0};
};

enum class OperationMode { standard, managed };

/// Identity resolution (module `identity`) and NMI's lookup knobs.
struct IdentitySettings {
    OperationMode mode = OperationMode::standard;  ///< --operation-mode
    bool force_namespaced = false;                 ///< --forceNamespaced / FORCENAMESPACED
    std::string mic_namespace{"default"};          ///< --MICNamespace
    int retry_attempts_for_created = 16;           ///< --retry-attempts-for-created
    int retry_attempts_for_assigned = 4;           ///< --retry-attempts-for-assigned
    Seconds find_identity_retry_interval{5};       ///< --find-identity-retry-interval
};

/// HTTP <-> domain (module `handlers`).
struct HandlerSettings {
    bool metadata_header_required = true;  ///< --metadata-header-required
    bool block_instance_metadata = false;  ///< --block-instance-metadata
    bool set_retry_after_header = false;   ///< --set-retry-after-header
    Seconds retry_after{20};               ///< value of that Retry-After
    Seconds not_ready_retry_after{1};      ///< Retry-After on 503 while starting
};

/// Workload identity (issue 12, module `workload`): pods labelled
/// `azure.workload.identity/use: "true"` get Azure AD tokens from the federated exchange of
/// their ServiceAccount's token.
struct WorkloadSettings {
    bool enabled = false;  ///< --workload-identity
    /// --workload-identity-tenant-id (default $AZURE_TENANT_ID): the tenant of a
    /// ServiceAccount without the `azure.workload.identity/tenant-id` annotation.
    std::string tenant_id{};
    /// --workload-identity-authority-host (default $AZURE_AUTHORITY_HOST, else Azure AD's
    /// public cloud): https only, its host on the authority allowlist (issue 11).
    std::string authority_host{"https://login.microsoftonline.com/"};
    /// --workload-identity-token-source: "tokenrequest" (TokenRequest API, bound to the pod)
    /// or "projected" (the token the kubelet projects into the pod).
    std::string token_source{"tokenrequest"};
    std::string kubelet_root_dir{"/var/lib/kubelet"};  ///< --kubelet-root-dir
    /// Azure AD's budget, separate from IMDS's: calls at once and calls per second.
    std::size_t max_concurrency = 10;  ///< --workload-identity-max-concurrency
    double rate_per_second = 20.0;     ///< --workload-identity-rate-limit
};

/// iptables: `app` turns these into iptables::Settings.
struct IptablesSettings {
    bool manage = true;           ///< --manage-iptables
    Seconds update_interval{60};  ///< --ipt-update-interval-sec
    /// --enable-conntrack-deletion; on by default (NMI: off): connections to IMDS opened
    /// before the rules would otherwise keep reaching it as the node.
    bool enable_conntrack_deletion = true;
    std::string backend{"auto"};      ///< --iptables-backend: auto|nft|legacy
    bool set_route_localnet = false;  ///< --set-route-localnet
    bool cleanup_on_exit = false;     ///< --cleanup-rules-on-exit
};

enum class LogFormat { text, json };

struct LogSettings {
    LogFormat format = LogFormat::text;  ///< --log-format
    std::string level{"info"};           ///< --log-level: trace|debug|info|warn|error|off
};

}  // namespace nmid
