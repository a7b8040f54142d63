// The flag table, part 2: nmid's own flags (standalone, listener, cache, logging, iptables,
// Kubernetes, issue 11's limits). flag_table.cpp joins the parts.
#include <array>
#include <chrono>

#include "flag_table.hpp"

namespace nmid::config::detail {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kNsPerMs = 1'000'000;

constexpr std::array<std::string_view, 2> kLogFormats{"text", "json"};
static_assert(static_cast<int>(LogFormat::text) == 0 && static_cast<int>(LogFormat::json) == 1);
constexpr std::array<std::string_view, 6> kLogLevels{"trace", "debug", "info",
                                                     "warn",  "error", "off"};

constexpr std::array<std::string_view, 3> kIptablesBackends{"auto", "nft", "legacy"};
constexpr std::array<std::string_view, 2> kPodSources{"kubelet", "apiserver"};

constexpr std::string_view kIgnoredKlog = "klog flag: accepted and ignored (nmid logs to stderr)";

// GCC warns about members left to their defaults even in designated initializers; leaving
// them out is the point of the designated style here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
// clang-format off
const std::array kNmidFlags{
    // Standalone mode and the pod and CRD sources.
    Flag{.name = "pods-file", .group = FlagGroup::standalone, .value_name = "PATH",
         .help = "read pods from this PodList JSON file instead of the kubelet",
         .target = [](ParseState& s) -> Target { return &s.config.pods.pods_file; }},
    Flag{.name = "crds-file", .group = FlagGroup::standalone, .value_name = "PATH",
         .help = "read aadpodidentity.k8s.io/v1 objects from this YAML/JSON file instead of "
                 "the API server",
         .target = [](ParseState& s) -> Target { return &s.config.crds.crds_file; }},
    Flag{.name = "pod-poll-interval", .group = FlagGroup::standalone,
         .format = Format::duration, .value_name = "DURATION",
         .help = "re-read the pod source this often",
         .target = [](ParseState& s) -> Target { return &s.config.pods.poll_interval; },
         .min = 1},
    Flag{.name = "pod-refresh-deadline", .group = FlagGroup::standalone,
         .format = Format::duration, .value_name = "DURATION",
         .help = "how long a request from an unknown pod IP waits for the pod source refresh",
         .target = [](ParseState& s) -> Target { return &s.config.pods.refresh_deadline; },
         .min = 1},
    Flag{.name = "crd-poll-interval", .group = FlagGroup::standalone,
         .format = Format::duration, .value_name = "DURATION",
         .help = "re-check the CRD file this often",
         .target = [](ParseState& s) -> Target { return &s.config.crds.poll_interval; },
         .min = 1},

    // The Node condition (issue 13 item 4).
    Flag{.name = "node-condition", .group = FlagGroup::kubernetes, .format = Format::boolean,
         .help = "write the condition NmidReady (True once ready, False with the reason) to "
                 "this node's status, for a taint that node-readiness-controller removes; needs "
                 "patch on nodes/status (deploy/optional/node-condition.yaml)",
         .target = [](ParseState& s) -> Target { return &s.config.node_condition; }},

    // Listener and process.
    Flag{.name = "debug-address", .group = FlagGroup::listener, .format = Format::endpoint,
         .value_name = "IP:PORT",
         .help = "debug listener for /debug/explain and `nmid explain` (keep it on loopback: it "
                 "shows which pod may use which identity); empty turns it off",
         .target = [](ParseState& s) -> Target { return &s.config.admin.debug_address; }},
    Flag{.name = "max-connections", .group = FlagGroup::listener, .format = Format::integer,
         .value_name = "N",
         .help = "token listener: open connections at most",
         .target = [](ParseState& s) -> Target { return &s.config.server.max_connections; },
         .min = 1, .max = 1'000'000},
    Flag{.name = "read-timeout", .group = FlagGroup::listener, .format = Format::duration,
         .value_name = "DURATION",
         .help = "token listener: time to receive a whole request once it started",
         .target = [](ParseState& s) -> Target { return &s.config.server.read_timeout; },
         .min = 1},
    Flag{.name = "idle-timeout", .group = FlagGroup::listener, .format = Format::duration,
         .value_name = "DURATION",
         .help = "token listener: close a keep-alive connection idle this long",
         .target = [](ParseState& s) -> Target { return &s.config.server.idle_timeout; },
         .min = 1},
    Flag{.name = "io-threads", .group = FlagGroup::listener, .format = Format::integer,
         .value_name = "N",
         .help = "I/O threads",
         .target = [](ParseState& s) -> Target { return &s.config.io_threads; },
         .min = 1, .max = 64},
    Flag{.name = "shutdown-grace", .group = FlagGroup::listener, .format = Format::duration,
         .value_name = "DURATION",
         .help = "on SIGTERM, time allowed for requests in flight",
         .target = [](ParseState& s) -> Target { return &s.config.shutdown_grace; },
         .min = 0},

    // Token cache and upstream.
    Flag{.name = "token-refresh-margin", .group = FlagGroup::cache_upstream,
         .format = Format::duration, .value_name = "DURATION",
         .help = "refresh a cached token at least this long before it expires (whole seconds)",
         .target = [](ParseState& s) -> Target { return &s.config.cache.refresh_margin; },
         .min = 0},
    Flag{.name = "token-min-remaining", .group = FlagGroup::cache_upstream,
         .format = Format::duration, .value_name = "DURATION",
         .help = "never serve a token with less lifetime left than this (whole seconds)",
         .target = [](ParseState& s) -> Target {
             return &s.config.cache.min_remaining_lifetime; },
         .min = 0},
    Flag{.name = "token-negative-ttl", .group = FlagGroup::cache_upstream,
         .format = Format::duration, .value_name = "DURATION",
         .help = "remember an upstream failure this long (0: not at all)",
         .target = [](ParseState& s) -> Target { return &s.config.cache.negative_ttl; },
         .min = 0},
    Flag{.name = "token-fetch-deadline", .group = FlagGroup::cache_upstream,
         .format = Format::duration, .value_name = "DURATION",
         .help = "overall deadline of one token fetch, retries included",
         .target = [](ParseState& s) -> Target { return &s.config.cache.fetch_deadline; },
         .min = 1},
    Flag{.name = "bypass-cache-min-interval", .group = FlagGroup::cache_upstream,
         .format = Format::duration, .value_name = "DURATION",
         .help = "bypass_cache=true forces one upstream fetch per pod and token at most this "
                 "often; inside it the cached token is served (0: every request forces)",
         .target = [](ParseState& s) -> Target { return &s.config.cache.bypass_min_interval; },
         .min = 0},
    Flag{.name = "token-cache-max-entries", .group = FlagGroup::cache_upstream,
         .format = Format::integer, .value_name = "N",
         .help = "cached tokens at most (identity and resource pairs)",
         .target = [](ParseState& s) -> Target { return &s.config.cache.max_entries; },
         .min = 1, .max = 10'000'000},
    Flag{.name = "upstream-max-concurrency", .group = FlagGroup::cache_upstream,
         .format = Format::integer, .value_name = "N",
         .help = "token requests in flight to IMDS at most (IMDS allows 5 per VM)",
         .target = [](ParseState& s) -> Target { return &s.config.cache.max_concurrency; },
         .min = 1, .max = 1'000},
    Flag{.name = "upstream-rate-limit", .group = FlagGroup::cache_upstream,
         .format = Format::real, .value_name = "RPS",
         .help = "token requests per second to IMDS at most (IMDS allows 20 per VM)",
         .target = [](ParseState& s) -> Target { return &s.config.cache.rate_per_second; }},
    Flag{.name = "upstream-connect-timeout", .group = FlagGroup::cache_upstream,
         .format = Format::duration, .value_name = "DURATION",
         .help = "deadline to connect to IMDS or AAD",
         .target = [](ParseState& s) -> Target { return &s.config.upstream.connect_timeout; },
         .min = 1},
    Flag{.name = "proxy-timeout", .group = FlagGroup::cache_upstream,
         .format = Format::duration, .value_name = "DURATION",
         .help = "deadline of one request proxied to IMDS",
         .target = [](ParseState& s) -> Target { return &s.config.upstream.proxy_timeout; },
         .min = 1},

    // Logging. klog's flags (klog.InitFlags) are accepted because NMI merged them in.
    Flag{.name = "log-format", .group = FlagGroup::logging, .format = Format::choice,
         .value_name = "text|json",
         .help = "log line format",
         .target = [](ParseState& s) -> Target { return &s.config.log.format; },
         .choices = kLogFormats},
    Flag{.name = "log-level", .group = FlagGroup::logging, .format = Format::choice,
         .value_name = "trace|debug|info|warn|error|off",
         .help = "lowest level logged",
         .target = [](ParseState& s) -> Target { return &s.config.log.level; },
         .choices = kLogLevels},
    Flag{.name = "v", .shorthand = 'v', .group = FlagGroup::logging, .format = Format::integer,
         .value_name = "N",
         .help = "klog verbosity, kept for NMI's manifests",
         .target = [](ParseState& s) -> Target { return &s.config.klog_verbosity; },
         .min = 0},
    Flag{.name = "logtostderr", .group = FlagGroup::logging, .format = Format::boolean,
         .help = kIgnoredKlog},
    Flag{.name = "alsologtostderr", .group = FlagGroup::logging, .format = Format::boolean,
         .help = kIgnoredKlog},
    Flag{.name = "stderrthreshold", .group = FlagGroup::logging, .value_name = "SEVERITY",
         .help = kIgnoredKlog},
    Flag{.name = "log_dir", .group = FlagGroup::logging, .value_name = "DIR",
         .help = kIgnoredKlog},
    Flag{.name = "log_file", .group = FlagGroup::logging, .value_name = "PATH",
         .help = kIgnoredKlog},
    Flag{.name = "log_file_max_size", .group = FlagGroup::logging, .value_name = "MB",
         .help = kIgnoredKlog},
    Flag{.name = "add_dir_header", .group = FlagGroup::logging, .format = Format::boolean,
         .help = kIgnoredKlog},
    Flag{.name = "skip_headers", .group = FlagGroup::logging, .format = Format::boolean,
         .help = kIgnoredKlog},
    Flag{.name = "skip_log_headers", .group = FlagGroup::logging, .format = Format::boolean,
         .help = kIgnoredKlog},
    Flag{.name = "one_output", .group = FlagGroup::logging, .format = Format::boolean,
         .help = kIgnoredKlog},
    Flag{.name = "vmodule", .group = FlagGroup::logging, .value_name = "PATTERN=N,...",
         .help = kIgnoredKlog},
    Flag{.name = "log_backtrace_at", .group = FlagGroup::logging, .value_name = "FILE:LINE",
         .help = kIgnoredKlog},

    // iptables.
    Flag{.name = "manage-iptables", .group = FlagGroup::iptables, .format = Format::boolean,
         .help = "install and reconcile the rules that redirect pods' IMDS traffic to nmid",
         .target = [](ParseState& s) -> Target { return &s.config.iptables.manage; }},
    Flag{.name = "ipt-update-interval-sec", .group = FlagGroup::iptables,
         .format = Format::integer, .value_name = "SECONDS",
         .help = "period of the iptables reconcile loop",
         .target = [](ParseState& s) -> Target { return &s.config.iptables.update_interval; },
         .min = 1},
    Flag{.name = "enable-conntrack-deletion", .group = FlagGroup::iptables,
         .format = Format::boolean,
         .help = "after the first sync, delete conntrack entries to IMDS so that connections "
                 "opened before the rules get redirected too; until done, /readyz is not ready "
                 "(NMI's default was false; nmid fails closed)",
         .target = [](ParseState& s) -> Target {
             return &s.config.iptables.enable_conntrack_deletion; }},
    Flag{.name = "iptables-backend", .group = FlagGroup::iptables, .format = Format::choice,
         .value_name = "auto|nft|legacy",
         .help = "xtables backend; auto picks the one holding the node's rules, as kube-proxy's "
                 "wrapper does",
         .target = [](ParseState& s) -> Target { return &s.config.iptables.backend; },
         .choices = kIptablesBackends},
    Flag{.name = "set-route-localnet", .group = FlagGroup::iptables, .format = Format::boolean,
         .help = "set net.ipv4.conf.all.route_localnet=1 when the DNAT target is on loopback",
         .target = [](ParseState& s) -> Target { return &s.config.iptables.set_route_localnet; }},
    Flag{.name = "cleanup-rules-on-exit", .group = FlagGroup::iptables, .format = Format::boolean,
         .help = "remove the rules when nmid exits (uninstall; by default they stay, fail-closed)",
         .target = [](ParseState& s) -> Target { return &s.config.iptables.cleanup_on_exit; }},
    Flag{.name = "kubeconfig", .group = FlagGroup::kubernetes, .value_name = "PATH",
         .help = "kubeconfig of the API server connection",
         .target = [](ParseState& s) -> Target { return &s.config.kubeconfig; },
         .default_note = "$KUBECONFIG, else in-cluster"},
    Flag{.name = "aad-ca-file", .group = FlagGroup::kubernetes, .value_name = "PATH",
         .help = "extra CA bundle trusted for Azure AD endpoints (service-principal "
                 "identities), on top of the system's",
         .target = [](ParseState& s) -> Target { return &s.config.aad_ca_file; }},
    Flag{.name = "pod-source", .group = FlagGroup::kubernetes, .format = Format::choice,
         .value_name = "kubelet|apiserver",
         .help = "pods from the node's kubelet (polled) or from an API-server watch of this "
                 "node's pods",
         .target = [](ParseState& s) -> Target { return &s.config.pods.source; },
         .choices = kPodSources},
    Flag{.name = "kubelet-url", .group = FlagGroup::kubernetes, .value_name = "URL",
         .help = "kubelet base URL; http://<node>:10255 uses the read-only port",
         .target = [](ParseState& s) -> Target { return &s.config.pods.kubelet_url; },
         .default_note = "https://$HOST_IP:10250"},
    Flag{.name = "kubelet-ca-file", .group = FlagGroup::kubernetes, .value_name = "PATH",
         .help = "CA bundle verifying the kubelet's serving certificate",
         .target = [](ParseState& s) -> Target { return &s.config.pods.kubelet_ca_file; },
         .default_note = "the cluster CA"},
    Flag{.name = "kubelet-insecure-tls", .group = FlagGroup::kubernetes, .format = Format::boolean,
         .help = "do not verify the kubelet's serving certificate (as metrics-server's flag)",
         .target = [](ParseState& s) -> Target { return &s.config.pods.kubelet_insecure_tls; }},
    Flag{.name = "kubelet-poll-interval", .group = FlagGroup::kubernetes,
         .format = Format::duration, .value_name = "DURATION",
         .help = "poll the kubelet this often (a request for an unknown IP reads at once)",
         .target = [](ParseState& s) -> Target { return &s.config.pods.kubelet_poll_interval; },
         .min = kNsPerMs},
    Flag{.name = "pod-freshness", .group = FlagGroup::kubernetes, .format = Format::duration,
         .value_name = "DURATION",
         .help = "never map an IP to a pod from a pod read older than this (0: no bound)",
         .target = [](ParseState& s) -> Target { return &s.config.pods.freshness; },
         .min = 0},

    // Issue 11: identity validation and CRD staleness.
    Flag{.name = "allow-cross-namespace-secrets", .group = FlagGroup::kubernetes,
         .format = Format::boolean,
         .help = "let a service-principal AzureIdentity name a Secret in another namespace; "
                 "exists only for NMI compatibility: whoever may write an AzureIdentity can then "
                 "have nmid read any Secret nmid may read and send it to an Azure AD endpoint",
         .target = [](ParseState& s) -> Target {
             return &s.config.crds.allow_cross_namespace_secrets;
         }},
    Flag{.name = "aad-authority-allowlist", .group = FlagGroup::kubernetes,
         .value_name = "HOST[:PORT],...",
         .help = "hosts an AzureIdentity adEndpoint may name besides the Azure AD authorities "
                 "(login.microsoftonline.com, .us, login.chinacloudapi.cn, "
                 "login.partner.microsoftonline.cn); https only; no port: any port",
         .target = [](ParseState& s) -> Target { return &s.config.crds.aad_authority_allowlist; }},
    // Issue 11: token cache per-pod fairness.
    Flag{.name = "token-cache-max-bytes", .group = FlagGroup::cache_upstream,
         .format = Format::integer, .value_name = "BYTES",
         .help = "cached tokens take at most this many bytes (keys, tokens and a fixed "
                 "overhead per entry)",
         .target = [](ParseState& s) -> Target { return &s.config.cache.max_bytes; },
         .min = 4'096, .max = std::int64_t{1} << 40},
    Flag{.name = "max-tokens-per-pod", .group = FlagGroup::cache_upstream,
         .format = Format::integer, .value_name = "N",
         .help = "distinct (identity, resource) pairs one pod may have cached; a pod at the "
                 "cap replaces its own least recently used",
         .target = [](ParseState& s) -> Target { return &s.config.cache.max_tokens_per_pod; },
         .min = 1, .max = 10'000'000},
    Flag{.name = "max-upstream-fetches-per-pod", .group = FlagGroup::cache_upstream,
         .format = Format::integer, .value_name = "N",
         .help = "token requests of one pod in flight to IMDS at most (capped at "
                 "--upstream-max-concurrency minus 1 so other pods get a slot)",
         .target = [](ParseState& s) -> Target {
             return &s.config.cache.max_upstream_fetches_per_pod; },
         .min = 1, .max = 1'000},
    Flag{.name = "max-pending-fetches-per-pod", .group = FlagGroup::cache_upstream,
         .format = Format::integer, .value_name = "N",
         .help = "token fetches and proxied requests of one pod queued or running at most; "
                 "more get 429 with Retry-After",
         .target = [](ParseState& s) -> Target {
             return &s.config.cache.max_pending_fetches_per_pod; },
         .min = 1, .max = 100'000},
    // Issue 11: listener per-pod connection cap.
    Flag{.name = "max-connections-per-pod", .group = FlagGroup::listener,
         .format = Format::integer, .value_name = "N",
         .help = "token listener: open connections per source IP at most; a pod over it has its "
                 "oldest idle keep-alive connection closed, or gets 429 (0: no cap)",
         .target = [](ParseState& s) -> Target { return &s.config.server.max_connections_per_pod; },
         .min = 0, .max = 1'000'000},
    Flag{.name = "crd-max-staleness", .group = FlagGroup::kubernetes, .format = Format::duration,
         .value_name = "DURATION",
         .help = "deny tokens while the identity watch has not confirmed its snapshot for longer "
                 "than this (0: never; an idle watch is re-confirmed at least every 10m)",
         .target = [](ParseState& s) -> Target { return &s.config.crds.max_staleness; },
         .min = 0},
};
// clang-format on
#pragma GCC diagnostic pop

}  // namespace

std::span<const Flag> nmid_flags() {
    return kNmidFlags;
}

}  // namespace nmid::config::detail
