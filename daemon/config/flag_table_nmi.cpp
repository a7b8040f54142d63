// The flag table, part 1: NMI's flags (reference nmi-behaviour 1.1). flag_table.cpp joins the
// parts.
#include <array>

#include "flag_table.hpp"

namespace nmid::config::detail {
namespace {

constexpr std::array<std::string_view, 2> kOperationModes{"standard", "managed"};
static_assert(static_cast<int>(OperationMode::standard) == 0 &&
              static_cast<int>(OperationMode::managed) == 1);

// GCC warns about members left to their defaults even in designated initializers; leaving
// them out is the point of the designated style here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
// clang-format off
const std::array kNmiFlags{
    // NMI-compatible (reference nmi-behaviour 1.1). Names and defaults must not change.
    Flag{.name = "help", .shorthand = 'h', .format = Format::boolean,
         .help = "show this help and exit",
         .target = [](ParseState& s) -> Target { return &s.help; }},
    Flag{.name = "version", .format = Format::boolean,
         .help = "print the version and exit",
         .target = [](ParseState& s) -> Target { return &s.version; }},
    Flag{.name = "node", .value_name = "NAME",
         .help = "name of this node: only its pods and assigned identities are considered",
         .target = [](ParseState& s) -> Target { return &s.config.node_name; },
         .default_note = "$NODE_NAME"},
    Flag{.name = "nmi-listen-address", .format = Format::ip, .value_name = "IP",
         .help = "address of the token listener (with 0.0.0.0 the iptables target stays 127.0.0.1)",
         .target = [](ParseState& s) -> Target { return &s.config.server.address; }},
    Flag{.name = "nmi-port", .format = Format::port, .value_name = "PORT",
         .help = "port of the token listener, also the iptables redirect target",
         .target = [](ParseState& s) -> Target { return &s.config.server.port; }},
    Flag{.name = "metadata-ip", .format = Format::ip, .value_name = "IP",
         .help = "IMDS address: iptables match, token fetches and proxied requests",
         .target = [](ParseState& s) -> Target { return &s.config.upstream.metadata_ip; }},
    Flag{.name = "metadata-port", .format = Format::port, .value_name = "PORT",
         .help = "IMDS port",
         .target = [](ParseState& s) -> Target { return &s.config.upstream.metadata_port; }},
    Flag{.name = "http-probe-port", .format = Format::port, .value_name = "PORT",
         .help = "admin port on all interfaces: /healthz, /readyz",
         .target = [](ParseState& s) -> Target { return &s.config.admin.probe_port; }},
    Flag{.name = "prometheus-port", .format = Format::port, .value_name = "PORT",
         .help = "metrics port on all interfaces: /metrics",
         .target = [](ParseState& s) -> Target { return &s.config.admin.prometheus_port; }},
    Flag{.name = "operation-mode", .format = Format::choice, .value_name = "standard|managed",
         .help = "identities from AzureAssignedIdentity (standard) or from bindings (managed; "
                 "implies --forceNamespaced)",
         .target = [](ParseState& s) -> Target { return &s.config.identity.mode; },
         .choices = kOperationModes, .fold_case = true},
    Flag{.name = "forceNamespaced", .format = Format::boolean,
         .help = "match identities and bindings only in the pod's namespace (or "
                 "FORCENAMESPACED=true)",
         .target = [](ParseState& s) -> Target { return &s.config.identity.force_namespaced; }},
    Flag{.name = "MICNamespace", .value_name = "NAMESPACE",
         .help = "namespace of the MIC pods, whose requests are passed through to IMDS",
         .target = [](ParseState& s) -> Target { return &s.config.identity.mic_namespace; }},
    Flag{.name = "retry-attempts-for-created", .format = Format::integer, .value_name = "N",
         .help = "standard mode: polls allowed while an assignment is still Created",
         .target = [](ParseState& s) -> Target {
             return &s.config.identity.retry_attempts_for_created; },
         .min = 0},
    Flag{.name = "retry-attempts-for-assigned", .format = Format::integer, .value_name = "N",
         .help = "standard mode: further polls allowed for it to become Assigned",
         .target = [](ParseState& s) -> Target {
             return &s.config.identity.retry_attempts_for_assigned; },
         .min = 0},
    Flag{.name = "find-identity-retry-interval", .format = Format::integer,
         .value_name = "SECONDS",
         .help = "standard mode: seconds between those polls",
         .target = [](ParseState& s) -> Target {
             return &s.config.identity.find_identity_retry_interval; },
         .min = 1},
    Flag{.name = "metadata-header-required", .format = Format::boolean,
         .help = "require the header Metadata: true on token and proxied requests",
         .target = [](ParseState& s) -> Target {
             return &s.config.handlers.metadata_header_required; }},
    Flag{.name = "block-instance-metadata", .format = Format::boolean,
         .help = "answer 403 to /metadata/instance instead of proxying it",
         .target = [](ParseState& s) -> Target {
             return &s.config.handlers.block_instance_metadata; }},
    Flag{.name = "set-retry-after-header", .format = Format::boolean,
         .help = "on identity lookup failure answer 503 with Retry-After instead of 404",
         .target = [](ParseState& s) -> Target {
             return &s.config.handlers.set_retry_after_header; }},
    Flag{.name = "enableScaleFeatures", .format = Format::boolean,
         .help = "watch only this node's AzureAssignedIdentities (label nodename)",
         .target = [](ParseState& s) -> Target { return &s.config.enable_scale_features; }},
    Flag{.name = "allow-network-plugin-kubenet", .format = Format::boolean,
         .help = "start even if the kubelet uses kubenet (pods could then spoof source IPs)",
         .target = [](ParseState& s) -> Target {
             return &s.config.allow_network_plugin_kubenet; }},
    Flag{.name = "kubelet-config", .value_name = "PATH",
         .help = "kubelet defaults file searched for --network-plugin=kubenet",
         .target = [](ParseState& s) -> Target { return &s.config.kubelet_config; }},
    Flag{.name = "custom-user-agent", .value_name = "TEXT",
         .help = "appended to the User-Agent of nmid's upstream requests",
         .target = [](ParseState& s) -> Target { return &s.config.custom_user_agent; }},
    Flag{.name = "enableProfile", .format = Format::boolean,
         .help = "accepted for NMI compatibility; nmid serves no pprof (logs a warning)",
         .target = [](ParseState& s) -> Target { return &s.config.enable_profile; }},

};
// clang-format on
#pragma GCC diagnostic pop

}  // namespace

std::span<const Flag> nmi_flags() {
    return kNmiFlags;
}

}  // namespace nmid::config::detail
