#include "nmid/config/config.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "flag_table.hpp"

#ifndef NMID_VERSION
#define NMID_VERSION "0.0.0-unknown"
#endif
#ifndef NMID_GIT_COMMIT
#define NMID_GIT_COMMIT "unknown"
#endif
#ifndef NMID_BUILD_DATE
#define NMID_BUILD_DATE "unknown"
#endif

namespace nmid::config {
namespace {

using detail::Flag;
using detail::Format;
using detail::ParseState;

constexpr std::size_t kHelpColumn = 40;

/// Quotes a value for the one-line error: control characters are escaped so that the
/// message stays on one line whatever the caller passed.
std::string quote(std::string_view value) {
    std::string out = "\"";
    for (const char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (byte < 0x20 || byte == 0x7f) {
            std::array<char, 5> hex{};
            std::snprintf(hex.data(), hex.size(), "\\x%02x", byte);
            out += hex.data();
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

std::string default_text(const Flag& flag) {
    if (!flag.default_note.empty()) {
        return std::string(flag.default_note);
    }
    ParseState defaults;
    std::string text = detail::show(flag, defaults);
    // pflag's convention: a false bool has no default worth printing.
    if (flag.format == Format::boolean && text == "false") {
        return {};
    }
    return text;
}

std::string_view heading(FlagGroup group) {
    switch (group) {
        case FlagGroup::nmi:
            return "NMI-compatible flags (aad-pod-identity nmi: same names and defaults)";
        case FlagGroup::standalone:
            return "Standalone mode and sources";
        case FlagGroup::kubernetes:
            return "Kubernetes (used when --pods-file / --crds-file are not given)";
        case FlagGroup::listener:
            return "Listener and process";
        case FlagGroup::cache_upstream:
            return "Token cache and upstream";
        case FlagGroup::logging:
            return "Logging (klog flags are accepted for NMI compatibility)";
        case FlagGroup::iptables:
            return "iptables";
        case FlagGroup::workload_identity:
            return "Workload identity (pods labelled azure.workload.identity/use=true)";
    }
    return "Other";
}

}  // namespace

ParseResult parse(std::span<const std::string_view> args, const EnvLookup& env) {
    ParseState state;
    std::string error;
    std::vector<std::string> warnings;
    std::vector<const Flag*> ignored_seen;
    const auto fail = [&](std::string message) {
        if (error.empty()) {
            error = std::move(message);
        }
    };

    if (env) {
        if (auto node = env("NODE_NAME")) {
            state.config.node_name = std::move(*node);
        }
        // The variables the azwi webhook gives pods, as defaults of the workload identity flags.
        if (auto tenant = env("AZURE_TENANT_ID")) {
            state.config.workload.tenant_id = std::move(*tenant);
        }
        if (auto authority = env("AZURE_AUTHORITY_HOST"); authority && !authority->empty()) {
            state.config.workload.authority_host = std::move(*authority);
        }
    }

    // `nmid cleanup [flags]`: a subcommand, as the first argument only.
    bool cleanup = false;
    if (!args.empty() && args.front() == "cleanup") {
        cleanup = true;
        args = args.subspan(1);
    }

    bool positional_only = false;
    const Flag* bare_bool = nullptr;  // previous argument was a bool flag without "="
    std::string bare_bool_spelling;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        const Flag* previous_bool = std::exchange(bare_bool, nullptr);
        if (positional_only || arg.size() < 2 || arg.front() != '-') {
            if (previous_bool != nullptr && !positional_only) {
                std::string message = "unexpected argument " + quote(arg);
                message += " after " + bare_bool_spelling;
                message += ": a bool flag takes its value only as " + bare_bool_spelling;
                message += "=";
                message += arg;
                fail(std::move(message));
            } else {
                fail("unexpected argument " + quote(arg) + ": nmid takes no positional arguments");
            }
            continue;
        }
        if (arg == "--") {
            positional_only = true;
            continue;
        }

        const std::size_t dashes = arg.starts_with("--") ? 2 : 1;
        const std::string_view body = arg.substr(dashes);
        std::string_view name = body;
        std::optional<std::string_view> value;
        if (const auto eq = body.find('='); eq != std::string_view::npos) {
            name = body.substr(0, eq);
            value = body.substr(eq + 1);
        }
        std::string spelling = std::string(arg.substr(0, dashes)) + std::string(name);
        const Flag* flag = detail::find_flag(name);
        if (flag == nullptr && dashes == 1) {
            // pflag shorthands: -h, and -v3 (-v 3 and -v=3 match the long name "v").
            if (const Flag* shorthand = detail::find_shorthand(body.front())) {
                const std::string_view rest = body.substr(1);
                if (rest.empty()) {
                    flag = shorthand;
                } else if (rest.starts_with('=')) {
                    flag = shorthand;
                    value = rest.substr(1);
                } else if (shorthand->format != Format::boolean) {
                    flag = shorthand;
                    value = rest;
                }
                if (flag != nullptr) {
                    spelling = std::string("-") + body.front();
                }
            }
        }
        if (flag == nullptr) {
            fail("unknown flag: " + spelling);
            continue;
        }

        if (flag->format == Format::boolean) {
            if (!value) {
                value = "true";
                bare_bool = flag;
                bare_bool_spelling = spelling;
            }
        } else if (!value) {
            // Unlike pflag, a following "--flag" is not swallowed as the value: it is a
            // missing value far more often than a value that starts with two dashes.
            if (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
                value = args[++i];
            } else {
                fail("flag needs an argument: " + spelling);
                continue;
            }
        }

        if (auto reason = detail::apply(*flag, state, *value)) {
            fail("invalid value " + quote(*value) + " for flag " + spelling + ": " + *reason);
            continue;
        }
        if (flag->target == nullptr &&
            std::find(ignored_seen.begin(), ignored_seen.end(), flag) == ignored_seen.end()) {
            ignored_seen.push_back(flag);
            warnings.push_back("flag " + spelling +
                               " is accepted for NMI compatibility and has no effect");
        }
    }

    // The debug listener shares no port with the others: with SO_REUSEPORT on both, one port
    // would silently answer probes with /debug/explain's 404 (or the reverse).
    if (error.empty()) {
        std::string host;
        std::uint16_t port = 0;
        const AdminSettings& admin = state.config.admin;
        if (split_endpoint(admin.debug_address, host, port) && port != 0 &&
            (port == admin.probe_port || port == admin.prometheus_port ||
             port == state.config.server.port)) {
            fail("--debug-address " + admin.debug_address +
                 " uses the port of the token listener, --http-probe-port or --prometheus-port; "
                 "give it a port of its own (or an empty value to turn it off)");
        }
    }

    ParseResult result;
    if (state.help) {
        result.action = Action::help;
    } else if (state.version) {
        result.action = Action::version;
    } else if (!error.empty()) {
        result.action = Action::error;
        result.error = std::move(error);
    } else if (cleanup) {
        result.action = Action::cleanup;
    }

    Config& config = state.config;
    // NMI: namespaced if the flag or the environment says so (exactly "true").
    if (env && env("FORCENAMESPACED") == std::optional<std::string>{"true"}) {
        config.identity.force_namespaced = true;
    }
    if (config.pods.kubelet_url.empty() && env) {
        if (auto host_ip = env("HOST_IP"); host_ip && !host_ip->empty()) {
            const bool v6 = host_ip->find(':') != std::string::npos;
            config.pods.kubelet_url =
                "https://" + (v6 ? "[" + *host_ip + "]" : *host_ip) + ":10250";
        }
    }
    // NMI refuses to start in managed mode without namespaced matching, and its chart always
    // adds the flag; nmid simply implies it.
    if (config.identity.mode == OperationMode::managed) {
        config.identity.force_namespaced = true;
    }
    result.config = std::move(config);
    if (result.action == Action::run || result.action == Action::cleanup) {
        result.warnings = std::move(warnings);
    }
    return result;
}

EnvLookup process_env() {
    return [](std::string_view name) -> std::optional<std::string> {
        const std::string key(name);
        // Read once at start-up, before any thread exists, so getenv's lack of thread
        // safety does not matter.
        const char* value = std::getenv(key.c_str());
        if (value == nullptr) {
            return std::nullopt;
        }
        return std::string(value);
    };
}

std::string_view version() noexcept {
    return NMID_VERSION;
}

std::string_view commit() noexcept {
    return NMID_GIT_COMMIT;
}

std::string_view build_date() noexcept {
    return NMID_BUILD_DATE;
}

std::string version_text(std::string_view version, std::string_view commit, std::string_view date) {
    // NMI prints "MIC Version: %s - NMI Version: %s - Commit: %s - Date: %s"; tools that
    // scrape it keep working.
    const auto or_unknown = [](std::string_view v) { return v.empty() ? "unknown" : v; };
    std::string text = "MIC Version: n/a - NMI Version: nmid ";
    text.append(or_unknown(version))
        .append(" - Commit: ")
        .append(or_unknown(commit))
        .append(" - Date: ")
        .append(or_unknown(date));
    return text;
}

std::string version_text() {
    return version_text(version(), commit(), build_date());
}

std::span<const FlagInfo> flags() {
    static const std::vector<FlagInfo> kInfos = [] {
        std::vector<FlagInfo> infos;
        for (const Flag& flag : detail::flag_table()) {
            infos.push_back(FlagInfo{
                .name = flag.name,
                .shorthand = flag.shorthand,
                .group = flag.group,
                .is_bool = flag.format == Format::boolean,
                .ignored = flag.target == nullptr,
                .value_name = flag.value_name,
                .help = flag.help,
                .default_text = default_text(flag),
            });
        }
        // Help order: by group, table order within a group.
        std::stable_sort(infos.begin(), infos.end(), [](const FlagInfo& a, const FlagInfo& b) {
            return static_cast<int>(a.group) < static_cast<int>(b.group);
        });
        return infos;
    }();
    return kInfos;
}

std::string help_text() {
    std::string out =
        "Usage: nmid [flags]\n"
        "\n"
        "nmid answers pods' Azure IMDS token requests on this node from memory. It is a\n"
        "drop-in replacement for NMI (aad-pod-identity): NMI's flags and defaults are "
        "accepted.\n"
        "\n"
        "Syntax: --flag=value, --flag value or -flag=value. A bool flag alone means true;\n"
        "give it a value only with '=' (--flag=false). Durations are numbers with a unit\n"
        "(ns, us, ms, s, m, h), e.g. 500ms, 15s, 1m30s.\n"
        "\n"
        "Environment:\n"
        "  NODE_NAME         default of --node\n"
        "  FORCENAMESPACED   \"true\" switches --forceNamespaced on\n"
        "  AZURE_TENANT_ID   default of --workload-identity-tenant-id\n"
        "  AZURE_AUTHORITY_HOST  default of --workload-identity-authority-host\n";

    std::optional<FlagGroup> group;
    for (const FlagInfo& flag : flags()) {
        if (group != flag.group) {
            group = flag.group;
            out += "\n";
            out += heading(flag.group);
            out += ":\n";
        }
        std::string left = flag.shorthand != '\0' ? std::string("  -") + flag.shorthand + ", --"
                                                  : std::string("      --");
        left += flag.name;
        if (!flag.is_bool) {
            left += ' ';
            left += flag.value_name;
        }
        out += left;
        if (left.size() + 2 > kHelpColumn) {
            out += '\n';
            out.append(kHelpColumn, ' ');
        } else {
            out.append(kHelpColumn - left.size(), ' ');
        }
        out += flag.help;
        if (!flag.default_text.empty()) {
            out += " (default " + flag.default_text + ")";
        }
        out += '\n';
    }
    return out;
}

}  // namespace nmid::config
