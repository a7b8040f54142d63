#pragma once

// Command line and environment into one validated `Config` (design.md section 2: read only by
// `app`). NMI's flags and defaults are accepted unchanged (reference nmi-behaviour 1.1, 1.2), so
// the aad-pod-identity chart's arguments work; nmid's own flags use the same kebab-case style.

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/config/settings.hpp"

namespace nmid::config {

struct Config {
    // NMI flags with no settings-struct home.
    std::string node_name;              ///< --node, default $NODE_NAME
    bool enable_profile = false;        ///< --enableProfile (accepted; nmid serves no pprof)
    bool enable_scale_features = true;  ///< --enableScaleFeatures
    bool allow_network_plugin_kubenet = false;           ///< --allow-network-plugin-kubenet
    std::string kubelet_config{"/etc/default/kubelet"};  ///< --kubelet-config
    std::string kubeconfig;         ///< --kubeconfig (else KUBECONFIG, else in-cluster)
    std::string aad_ca_file;        ///< --aad-ca-file: trusted for AAD on top of the system CAs
    std::string custom_user_agent;  ///< --custom-user-agent (app appends it to the upstream UA)
    bool node_condition = false;    ///< --node-condition: write the Node condition NmidReady
    int klog_verbosity = 0;         ///< -v / --v
    int io_threads = 1;             ///< --io-threads (1..64)
    Millis shutdown_grace{5000};    ///< --shutdown-grace
    HttpServerSettings server;
    AdminSettings admin;
    UpstreamSettings upstream;
    TokenCacheSettings cache;
    PodSettings pods;
    CrdSettings crds;
    IdentitySettings identity;
    HandlerSettings handlers;
    IptablesSettings iptables;
    LogSettings log;
    WorkloadSettings workload;
};

/// `cleanup`: the first argument was the word `cleanup` (`nmid cleanup [flags]`): remove the
/// iptables rules the flags describe, then exit.
enum class Action { run, cleanup, help, version, error };

struct ParseResult {
    Action action = Action::run;
    Config config;
    /// One line, no trailing newline, when `action == Action::error`.
    std::string error;
    /// Things worth one log line each once logging is up: flags accepted for NMI compatibility
    /// that have no effect (klog's `--logtostderr`, ...). Filled for run and cleanup only.
    /// (`--enableProfile` is stored in `Config::enable_profile`; `app` warns about it.)
    std::vector<std::string> warnings;
};

/// Looks up one environment variable; `std::nullopt` when it is not set.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// Parses `args` (argv[1..]) with pflag syntax: `--flag=value`, `--flag value`, `--flag` for a
/// bool (which never consumes the next argument), `--flag=false`, and Go's single-dash
/// `-flag=value`. A value that starts with `--` is not taken as the previous flag's value.
/// A first argument `cleanup` selects Action::cleanup (the same flags apply).
/// Reads `NODE_NAME` (default of --node), `FORCENAMESPACED` (exactly "true" switches
/// namespaced matching on) and `HOST_IP` (default of --kubelet-url) through `env`. `--help`/`-h`
/// gives Action::help and `--version` gives Action::version, even next to other (or invalid) flags.
/// Any invalid input gives Action::error with one line naming the flag and the value. Never throws
/// for bad input.
[[nodiscard]] ParseResult parse(std::span<const std::string_view> args, const EnvLookup& env);

/// `EnvLookup` over the process environment (`getenv`).
[[nodiscard]] EnvLookup process_env();

/// Usage text for `nmid --help`: every flag, grouped, with its default. Ends with a newline.
[[nodiscard]] std::string help_text();

/// NMI-shaped version line for `nmid --version`, containing "nmid <version>". One line,
/// without a trailing newline.
[[nodiscard]] std::string version_text();

/// The same line for the given stamps; an empty one prints as "unknown".
[[nodiscard]] std::string version_text(std::string_view version, std::string_view commit,
                                       std::string_view date);

/// nmid's version: CMake's NMID_VERSION, else `git describe`, else the project version ("0.1.0").
[[nodiscard]] std::string_view version() noexcept;

/// The commit nmid was built from (NMID_COMMIT, else git's HEAD), or "unknown".
[[nodiscard]] std::string_view commit() noexcept;

/// The build's date (NMID_BUILD_DATE, else the commit's date), or "unknown".
[[nodiscard]] std::string_view build_date() noexcept;

/// "IP:PORT" or "[IPv6]:PORT" with a literal address (no host name) and a port (0: the OS picks
/// one), as --debug-address takes it. Sets `host` (without brackets) and `port`; false otherwise.
[[nodiscard]] bool split_endpoint(std::string_view text, std::string& host, std::uint16_t& port);

/// Headings of `help_text()`, in the order printed.
enum class FlagGroup {
    nmi,
    standalone,
    kubernetes,
    listener,
    cache_upstream,
    logging,
    iptables,
    workload_identity,
};

/// One accepted flag, as the single flag table defines it (for help and tests).
struct FlagInfo {
    std::string_view name;  ///< without dashes: "nmi-port", "v"
    char shorthand = '\0';  ///< single-letter alias ('h', 'v'), '\0' when none
    FlagGroup group = FlagGroup::nmi;
    bool is_bool = false;         ///< bool flags take no separate value argument
    bool ignored = false;         ///< accepted for compatibility, no effect
    std::string_view value_name;  ///< placeholder in the help ("PORT"), empty for bools
    std::string_view help;        ///< one-line description
    std::string default_text;     ///< as the help prints it; empty when none is shown
};

/// Every accepted flag, in help order.
[[nodiscard]] std::span<const FlagInfo> flags();

}  // namespace nmid::config
