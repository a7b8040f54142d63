#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "nmid/config/config.hpp"

namespace nmid::config {
namespace {

using namespace std::chrono_literals;
using test::joined;
using test::parse_args;

TEST(ConfigParse, NoArgumentsGiveNmiDefaults) {
    const ParseResult result = parse_args({});
    ASSERT_EQ(result.action, Action::run) << result.error;
    const Config& c = result.config;
    // NMI flags (reference nmi-behaviour 1.1).
    EXPECT_EQ(c.server.address, "127.0.0.1");
    EXPECT_EQ(c.server.port, 2579);
    EXPECT_EQ(c.upstream.metadata_ip, "169.254.169.254");
    EXPECT_EQ(c.upstream.metadata_port, 80);
    EXPECT_EQ(c.node_name, "");
    EXPECT_EQ(c.iptables.update_interval, 60s);
    EXPECT_FALSE(c.identity.force_namespaced);
    EXPECT_EQ(c.identity.mic_namespace, "default");
    EXPECT_EQ(c.admin.probe_port, 8080);
    EXPECT_EQ(c.identity.retry_attempts_for_created, 16);
    EXPECT_EQ(c.identity.retry_attempts_for_assigned, 4);
    EXPECT_EQ(c.identity.find_identity_retry_interval, 5s);
    EXPECT_FALSE(c.enable_profile);
    EXPECT_TRUE(c.enable_scale_features);
    EXPECT_FALSE(c.handlers.block_instance_metadata);
    EXPECT_TRUE(c.handlers.metadata_header_required);
    EXPECT_EQ(c.admin.prometheus_port, 9090);
    EXPECT_EQ(c.identity.mode, OperationMode::standard);
    EXPECT_FALSE(c.allow_network_plugin_kubenet);
    EXPECT_EQ(c.kubelet_config, "/etc/default/kubelet");
    EXPECT_FALSE(c.handlers.set_retry_after_header);
    EXPECT_TRUE(c.iptables.enable_conntrack_deletion);  // NMI: false; nmid fails closed
    EXPECT_EQ(c.log.format, LogFormat::text);
    EXPECT_EQ(c.custom_user_agent, "");
    EXPECT_EQ(c.klog_verbosity, 0);
    // nmid's own flags.
    EXPECT_EQ(c.pods.pods_file, "");
    EXPECT_EQ(c.crds.crds_file, "");
    EXPECT_TRUE(c.iptables.manage);
    EXPECT_EQ(c.io_threads, 1);
    EXPECT_EQ(c.log.level, "info");
    EXPECT_EQ(c.shutdown_grace, 5s);
    EXPECT_EQ(c.cache.refresh_margin, 300s);
    EXPECT_EQ(c.cache.negative_ttl, 5s);
    EXPECT_EQ(c.cache.max_entries, 10'000U);
    EXPECT_EQ(c.cache.fetch_deadline, 15s);
    EXPECT_EQ(c.cache.min_remaining_lifetime, 60s);
    EXPECT_EQ(c.cache.max_concurrency, 5U);
    EXPECT_DOUBLE_EQ(c.cache.rate_per_second, 20.0);
    EXPECT_EQ(c.upstream.connect_timeout, 2s);
    EXPECT_EQ(c.upstream.proxy_timeout, 10s);
    EXPECT_EQ(c.server.max_connections, 4096U);
    EXPECT_EQ(c.server.read_timeout, 10s);
    EXPECT_EQ(c.server.idle_timeout, 90s);
    EXPECT_EQ(c.pods.poll_interval, 1s);
    EXPECT_EQ(c.pods.refresh_deadline, 2s);
    EXPECT_EQ(c.crds.poll_interval, 1s);
    EXPECT_FALSE(c.crds.allow_cross_namespace_secrets);
    EXPECT_EQ(c.crds.aad_authority_allowlist, "");
    EXPECT_EQ(c.crds.max_staleness, 0ms);
    EXPECT_EQ(c.upstream.user_agent, "nmid");  // app appends --custom-user-agent
    EXPECT_TRUE(result.warnings.empty());
    EXPECT_TRUE(result.error.empty());
}

TEST(ConfigParse, IgnoredKlogFlagsAreAcceptedWithOneWarningEach) {
    const std::vector<std::string> args{"--logtostderr",
                                        "--alsologtostderr=false",
                                        "--stderrthreshold=INFO",
                                        "--log_dir=/var/log",
                                        "--log_file",
                                        "/tmp/nmi.log",
                                        "--log_file_max_size=1800",
                                        "--add_dir_header",
                                        "--skip_headers=true",
                                        "--skip_log_headers",
                                        "--one_output",
                                        "--vmodule=server=4",
                                        "--log_backtrace_at=server.go:10",
                                        "-logtostderr=true"};
    const ParseResult result = parse_args(args);
    ASSERT_EQ(result.action, Action::run) << result.error;
    EXPECT_EQ(result.warnings.size(), 12U);  // --logtostderr twice, warned once
    for (const FlagInfo& flag : flags()) {
        if (!flag.ignored) {
            continue;
        }
        const bool warned =
            std::any_of(result.warnings.begin(), result.warnings.end(), [&](const std::string& w) {
                return w.find(std::string(flag.name) + " is accepted for NMI compatibility") !=
                       std::string::npos;
            });
        EXPECT_TRUE(warned) << flag.name;
    }
}

TEST(ConfigParse, EnableProfileIsStoredWithoutWarning) {
    // app logs the one warning about pprof from Config::enable_profile.
    const ParseResult result = parse_args({"--enableProfile"});
    ASSERT_EQ(result.action, Action::run);
    EXPECT_TRUE(result.config.enable_profile);
    EXPECT_TRUE(result.warnings.empty());
}

struct SyntaxRow {
    std::vector<std::string> args;
    std::function<void(const Config&)> expect;
};

TEST(ConfigParse, AcceptsPflagAndGoFlagSyntaxes) {
    const auto port_is = [](int port) {
        return [port](const Config& c) { EXPECT_EQ(c.server.port, port); };
    };
    const auto namespaced_is = [](bool on) {
        return [on](const Config& c) { EXPECT_EQ(c.identity.force_namespaced, on); };
    };
    const auto verbosity_is = [](int v) {
        return [v](const Config& c) { EXPECT_EQ(c.klog_verbosity, v); };
    };
    const std::vector<SyntaxRow> rows{
        {{"--nmi-port=1234"}, port_is(1234)},
        {{"--nmi-port", "1234"}, port_is(1234)},
        {{"-nmi-port=1234"}, port_is(1234)},
        {{"-nmi-port", "1234"}, port_is(1234)},
        {{"--nmi-port=1", "--nmi-port=2"}, port_is(2)},  // last one wins
        {{"--nmi-port=00080"}, port_is(80)},
        {{"--forceNamespaced"}, namespaced_is(true)},
        {{"-forceNamespaced"}, namespaced_is(true)},
        {{"--forceNamespaced=true"}, namespaced_is(true)},
        {{"--forceNamespaced=1"}, namespaced_is(true)},
        {{"--forceNamespaced=t"}, namespaced_is(true)},
        {{"--forceNamespaced=T"}, namespaced_is(true)},
        {{"--forceNamespaced=TRUE"}, namespaced_is(true)},
        {{"--forceNamespaced=True"}, namespaced_is(true)},
        {{"--forceNamespaced=false"}, namespaced_is(false)},
        {{"--forceNamespaced=0"}, namespaced_is(false)},
        {{"--forceNamespaced=f"}, namespaced_is(false)},
        {{"--forceNamespaced=F"}, namespaced_is(false)},
        {{"--forceNamespaced=FALSE"}, namespaced_is(false)},
        {{"--forceNamespaced=False"}, namespaced_is(false)},
        {{"--forceNamespaced", "--forceNamespaced=false"}, namespaced_is(false)},
        {{"-v=3"}, verbosity_is(3)},
        {{"-v", "3"}, verbosity_is(3)},
        {{"-v3"}, verbosity_is(3)},
        {{"--v=3"}, verbosity_is(3)},
        {{"--v", "3"}, verbosity_is(3)},
        // A bool flag never consumes the next argument.
        {{"--block-instance-metadata", "--node", "n1"},
         [](const Config& c) {
             EXPECT_TRUE(c.handlers.block_instance_metadata);
             EXPECT_EQ(c.node_name, "n1");
         }},
        // Values: '=' inside, leading single dash, empty.
        {{"--custom-user-agent=a=b"},
         [](const Config& c) { EXPECT_EQ(c.custom_user_agent, "a=b"); }},
        {{"--custom-user-agent", "-x"},
         [](const Config& c) { EXPECT_EQ(c.custom_user_agent, "-x"); }},
        {{"--retry-attempts-for-created", "+3"},
         [](const Config& c) { EXPECT_EQ(c.identity.retry_attempts_for_created, 3); }},
        {{"--MICNamespace="}, [](const Config& c) { EXPECT_EQ(c.identity.mic_namespace, ""); }},
        // The aad-pod-identity chart's arguments, as rendered for a managed-mode install.
        {{"--node=aks-1", "--http-probe-port=8085", "--operation-mode=managed", "--forceNamespaced",
          "--kubelet-config=/etc/default/kubelet", "--metadata-header-required=true",
          "--prometheus-port=9090", "--log-format=text", "--v=2"},
         [](const Config& c) {
             EXPECT_EQ(c.node_name, "aks-1");
             EXPECT_EQ(c.admin.probe_port, 8085);
             EXPECT_EQ(c.identity.mode, OperationMode::managed);
             EXPECT_TRUE(c.identity.force_namespaced);
             EXPECT_EQ(c.klog_verbosity, 2);
         }},
    };
    for (const SyntaxRow& row : rows) {
        SCOPED_TRACE(joined(row.args));
        const ParseResult result = parse_args(row.args);
        ASSERT_EQ(result.action, Action::run) << result.error;
        row.expect(result.config);
    }
}

struct DurationRow {
    std::string value;
    std::chrono::milliseconds expected;
};

TEST(ConfigParse, DurationsUseGoSyntax) {
    const std::vector<DurationRow> rows{
        {"500ms", 500ms},
        {"15s", 15s},
        {"2m", 2min},
        {"1h", 1h},
        {"1m30s", 90s},
        {"1h2m3s4ms", 1h + 2min + 3s + 4ms},
        {"1.5s", 1500ms},
        {".5s", 500ms},
        {"1.s", 1s},
        {"0.25h", 15min},
        {"1500000us", 1500ms},
        {"1500000\xC2\xB5s", 1500ms},  // micro sign
        {"1500000\xCE\xBCs", 1500ms},  // Greek mu
        {"2000000000ns", 2s},
        {"1s500000000ns", 1500ms},
        {"+3s", 3s},
        {"0", 0ms},
        {"0s", 0ms},
    };
    for (const DurationRow& row : rows) {
        SCOPED_TRACE(row.value);
        const ParseResult result = parse_args({"--shutdown-grace=" + row.value});
        ASSERT_EQ(result.action, Action::run) << result.error;
        EXPECT_EQ(result.config.shutdown_grace, row.expected);
    }
}

TEST(ConfigParse, NodeNameDefaultsToEnvironment) {
    EXPECT_EQ(parse_args({}, {{"NODE_NAME", "aks-7"}}).config.node_name, "aks-7");
    EXPECT_EQ(parse_args({"--node=aks-8"}, {{"NODE_NAME", "aks-7"}}).config.node_name, "aks-8");
    EXPECT_EQ(parse_args({"--node="}, {{"NODE_NAME", "aks-7"}}).config.node_name, "");
}

TEST(ConfigParse, ForceNamespacedEnvironmentMustBeExactlyTrue) {
    struct Row {
        std::string value;
        bool namespaced;
    };
    const std::vector<Row> rows{{"true", true}, {"True", false},  {"TRUE", false}, {"1", false},
                                {"", false},    {"false", false}, {" true", false}};
    for (const Row& row : rows) {
        SCOPED_TRACE(row.value);
        EXPECT_EQ(parse_args({}, {{"FORCENAMESPACED", row.value}}).config.identity.force_namespaced,
                  row.namespaced);
    }
    // NMI ORs flag and environment: the flag cannot switch the environment off.
    EXPECT_TRUE(parse_args({"--forceNamespaced=false"}, {{"FORCENAMESPACED", "true"}})
                    .config.identity.force_namespaced);
    EXPECT_TRUE(parse_args({"--forceNamespaced"}, {{"FORCENAMESPACED", "false"}})
                    .config.identity.force_namespaced);
}

TEST(ConfigParse, ManagedModeImpliesNamespacedMatching) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--operation-mode=managed"},
             {"--operation-mode", "Managed"},
             {"--operation-mode=managed", "--forceNamespaced=false"}}) {
        SCOPED_TRACE(joined(args));
        const ParseResult result = parse_args(args);
        ASSERT_EQ(result.action, Action::run) << result.error;
        EXPECT_EQ(result.config.identity.mode, OperationMode::managed);
        EXPECT_TRUE(result.config.identity.force_namespaced);
    }
    EXPECT_FALSE(parse_args({"--operation-mode=standard"}).config.identity.force_namespaced);
}

struct ActionRow {
    std::vector<std::string> args;
    Action action;
};

TEST(ConfigParse, HelpAndVersionWinOverOtherFlags) {
    const std::vector<ActionRow> rows{
        {{"--help"}, Action::help},
        {{"-h"}, Action::help},
        {{"-help"}, Action::help},
        {{"--node=n", "--help"}, Action::help},
        {{"--no-such-flag", "--help"}, Action::help},
        {{"--node", "--help"}, Action::help},
        {{"--help", "--version"}, Action::help},
        {{"--version"}, Action::version},
        {{"-version"}, Action::version},
        {{"--version=true"}, Action::version},
        {{"--nmi-port=1", "--version"}, Action::version},
        {{"--nmi-port=bad", "--version"}, Action::version},
        {{"--version", "stray"}, Action::version},
        {{"--version=false"}, Action::run},
        {{"--help=false"}, Action::run},
    };
    for (const ActionRow& row : rows) {
        SCOPED_TRACE(joined(row.args));
        EXPECT_EQ(parse_args(row.args).action, row.action);
    }
}

struct ErrorRow {
    std::vector<std::string> args;
    std::string message;
};

TEST(ConfigParse, InvalidInputGivesOneExactErrorLine) {
    const std::string units = "(units: ns, us, ms, s, m, h; e.g. 500ms, 15s, 1m30s)";
    const std::vector<ErrorRow> rows{
        // Unknown flags and missing values.
        {{"--foo"}, "unknown flag: --foo"},
        {{"--foo=bar"}, "unknown flag: --foo"},
        {{"-x"}, "unknown flag: -x"},
        {{"-hx"}, "unknown flag: -hx"},
        {{"--h"}, "unknown flag: --h"},
        {{"--host-ip=10.0.0.1"}, "unknown flag: --host-ip"},
        {{"--forcenamespaced"}, "unknown flag: --forcenamespaced"},
        {{"--node"}, "flag needs an argument: --node"},
        {{"--node", "--forceNamespaced"}, "flag needs an argument: --node"},
        {{"-v"}, "flag needs an argument: -v"},
        {{"-node"}, "flag needs an argument: -node"},
        // Positional arguments.
        {{"extra"}, "unexpected argument \"extra\": nmid takes no positional arguments"},
        {{"-"}, "unexpected argument \"-\": nmid takes no positional arguments"},
        {{"--", "--node=a"},
         "unexpected argument \"--node=a\": nmid takes no positional arguments"},
        {{"--forceNamespaced", "false"},
         "unexpected argument \"false\" after --forceNamespaced: a bool flag takes its value "
         "only as --forceNamespaced=false"},
        // Ports.
        {{"--nmi-port=abc"},
         "invalid value \"abc\" for flag --nmi-port: not a port number (0-65535)"},
        {{"--nmi-port=65536"},
         "invalid value \"65536\" for flag --nmi-port: not a port number (0-65535)"},
        {{"--nmi-port=-1"},
         "invalid value \"-1\" for flag --nmi-port: not a port number (0-65535)"},
        {{"--nmi-port="}, "invalid value \"\" for flag --nmi-port: not a port number (0-65535)"},
        {{"--metadata-port", "8o"},
         "invalid value \"8o\" for flag --metadata-port: not a port number (0-65535)"},
        {{"--http-probe-port=+80"},
         "invalid value \"+80\" for flag --http-probe-port: not a port number (0-65535)"},
        {{"--prometheus-port=1e3"},
         "invalid value \"1e3\" for flag --prometheus-port: not a port number (0-65535)"},
        // Addresses.
        {{"--nmi-listen-address=localhost"},
         "invalid value \"localhost\" for flag --nmi-listen-address: not an IP address"},
        {{"--metadata-ip=169.254.169.254.1"},
         "invalid value \"169.254.169.254.1\" for flag --metadata-ip: not an IP address"},
        {{"--metadata-ip="}, "invalid value \"\" for flag --metadata-ip: not an IP address"},
        // Choices.
        {{"--operation-mode=foo"},
         "invalid value \"foo\" for flag --operation-mode: operation mode foo not supported "
         "(want standard or managed)"},
        {{"--log-format=xml"},
         "invalid value \"xml\" for flag --log-format: want one of text, json"},
        {{"--log-format=JSON"},
         "invalid value \"JSON\" for flag --log-format: want one of text, json"},
        {{"--log-level=verbose"},
         "invalid value \"verbose\" for flag --log-level: want one of trace, debug, info, warn, "
         "error, off"},
        // Booleans.
        {{"--forceNamespaced=yes"},
         "invalid value \"yes\" for flag --forceNamespaced: not a boolean (true, false, 1 or 0)"},
        {{"--manage-iptables="},
         "invalid value \"\" for flag --manage-iptables: not a boolean (true, false, 1 or 0)"},
        {{"--logtostderr=maybe"},
         "invalid value \"maybe\" for flag --logtostderr: not a boolean (true, false, 1 or 0)"},
        // Integers.
        {{"--ipt-update-interval-sec=0"},
         "invalid value \"0\" for flag --ipt-update-interval-sec: must be greater than 0"},
        {{"--find-identity-retry-interval=-5"},
         "invalid value \"-5\" for flag --find-identity-retry-interval: must be greater than 0"},
        {{"--retry-attempts-for-created=-1"},
         "invalid value \"-1\" for flag --retry-attempts-for-created: must not be negative"},
        {{"--retry-attempts-for-assigned=x"},
         "invalid value \"x\" for flag --retry-attempts-for-assigned: not an integer"},
        {{"--retry-attempts-for-assigned=1.5"},
         "invalid value \"1.5\" for flag --retry-attempts-for-assigned: not an integer"},
        {{"--retry-attempts-for-created=99999999999"},
         "invalid value \"99999999999\" for flag --retry-attempts-for-created: out of range"},
        {{"--retry-attempts-for-created=99999999999999999999"},
         "invalid value \"99999999999999999999\" for flag --retry-attempts-for-created: out of "
         "range"},
        {{"--io-threads=0"}, "invalid value \"0\" for flag --io-threads: must be between 1 and 64"},
        {{"--io-threads=65"},
         "invalid value \"65\" for flag --io-threads: must be between 1 and 64"},
        {{"--max-connections=2000000"},
         "invalid value \"2000000\" for flag --max-connections: must be between 1 and 1000000"},
        {{"--token-cache-max-entries=0"},
         "invalid value \"0\" for flag --token-cache-max-entries: must be between 1 and "
         "10000000"},
        {{"--upstream-max-concurrency=0"},
         "invalid value \"0\" for flag --upstream-max-concurrency: must be between 1 and 1000"},
        {{"-v=-1"}, "invalid value \"-1\" for flag -v: must not be negative"},
        {{"-vx"}, "invalid value \"x\" for flag -v: not an integer"},
        // Rates.
        {{"--upstream-rate-limit=0"},
         "invalid value \"0\" for flag --upstream-rate-limit: must be greater than 0"},
        {{"--upstream-rate-limit=-2"},
         "invalid value \"-2\" for flag --upstream-rate-limit: must be greater than 0"},
        {{"--upstream-rate-limit=fast"},
         "invalid value \"fast\" for flag --upstream-rate-limit: not a number"},
        {{"--upstream-rate-limit=inf"},
         "invalid value \"inf\" for flag --upstream-rate-limit: not a number"},
        {{"--upstream-rate-limit=nan"},
         "invalid value \"nan\" for flag --upstream-rate-limit: not a number"},
        // Durations.
        {{"--read-timeout=15"},
         "invalid value \"15\" for flag --read-timeout: missing unit " + units},
        {{"--read-timeout=1.5"},
         "invalid value \"1.5\" for flag --read-timeout: missing unit " + units},
        {{"--read-timeout=1m30"},
         "invalid value \"1m30\" for flag --read-timeout: missing unit " + units},
        {{"--idle-timeout=abc"},
         "invalid value \"abc\" for flag --idle-timeout: not a duration " + units},
        {{"--idle-timeout="},
         "invalid value \"\" for flag --idle-timeout: not a duration " + units},
        {{"--idle-timeout=s"},
         "invalid value \"s\" for flag --idle-timeout: not a duration " + units},
        {{"--idle-timeout=."},
         "invalid value \".\" for flag --idle-timeout: not a duration " + units},
        {{"--idle-timeout=1d"},
         "invalid value \"1d\" for flag --idle-timeout: unknown unit \"d\" " + units},
        {{"--idle-timeout=1 s"},
         "invalid value \"1 s\" for flag --idle-timeout: unknown unit \" s\" " + units},
        {{"--proxy-timeout=9999999999h"},
         "invalid value \"9999999999h\" for flag --proxy-timeout: duration out of range"},
        {{"--proxy-timeout=99999999999999999999ns"},
         "invalid value \"99999999999999999999ns\" for flag --proxy-timeout: duration out of "
         "range"},
        {{"--proxy-timeout=0s"},
         "invalid value \"0s\" for flag --proxy-timeout: must be greater than 0"},
        {{"--proxy-timeout=-1s"},
         "invalid value \"-1s\" for flag --proxy-timeout: must be greater than 0"},
        {{"--shutdown-grace=-1ms"},
         "invalid value \"-1ms\" for flag --shutdown-grace: must not be negative"},
        {{"--read-timeout=1us"},
         "invalid value \"1us\" for flag --read-timeout: must be a whole number of milliseconds"},
        {{"--token-refresh-margin=1500ms"},
         "invalid value \"1500ms\" for flag --token-refresh-margin: must be a whole number of "
         "seconds"},
        // Control characters are escaped so that the message stays one line.
        {{"--nmi-port=8\n0"},
         "invalid value \"8\\n0\" for flag --nmi-port: not a port number "
         "(0-65535)"},
        {{"--nmi-port=\x01\"\\"},
         "invalid value \"\\x01\\\"\\\\\" for flag --nmi-port: not a "
         "port number (0-65535)"},
        // The first error is reported.
        {{"--foo", "--nmi-port=x"}, "unknown flag: --foo"},
        {{"--nmi-port=x", "--foo"},
         "invalid value \"x\" for flag --nmi-port: not a port number (0-65535)"},
    };
    for (const ErrorRow& row : rows) {
        SCOPED_TRACE(joined(row.args));
        const ParseResult result = parse_args(row.args);
        ASSERT_EQ(result.action, Action::error);
        EXPECT_EQ(result.error, row.message);
        EXPECT_EQ(result.error.find('\n'), std::string::npos);
        EXPECT_TRUE(result.warnings.empty());
    }
}

TEST(ConfigParse, ProcessEnvReadsTheEnvironment) {
    // The only test that touches the real environment, with a name nothing else uses.
    constexpr const char* kName = "NMID_CONFIG_UNIT_TEST_VARIABLE";
    const EnvLookup env = process_env();
    ASSERT_EQ(::unsetenv(kName), 0);
    EXPECT_EQ(env(kName), std::nullopt);
    ASSERT_EQ(::setenv(kName, "node-9", 1), 0);
    EXPECT_EQ(env(kName), std::optional<std::string>{"node-9"});
    ASSERT_EQ(::unsetenv(kName), 0);
}

TEST(ConfigParse, NullEnvLookupIsTreatedAsEmpty) {
    const std::vector<std::string_view> args{"--node=n"};
    const ParseResult result = parse(args, EnvLookup{});
    ASSERT_EQ(result.action, Action::run);
    EXPECT_EQ(result.config.node_name, "n");
}

TEST(ConfigParse, CleanupIsASubcommandTakingTheSameFlags) {
    const ParseResult result =
        parse_args({"cleanup", "--iptables-backend=legacy", "--metadata-ip=10.1.2.3"});
    ASSERT_EQ(result.action, Action::cleanup) << result.error;
    EXPECT_EQ(result.config.iptables.backend, "legacy");
    EXPECT_EQ(result.config.upstream.metadata_ip, "10.1.2.3");
    // Only as the first argument.
    const ParseResult later = parse_args({"--manage-iptables", "cleanup"});
    EXPECT_EQ(later.action, Action::error);
    EXPECT_EQ(parse_args({"cleanup", "--bogus"}).action, Action::error);
    EXPECT_EQ(parse_args({"cleanup", "--help"}).action, Action::help);
}

TEST(ConfigParse, KubeletUrlDefaultsToHostIp) {
    const auto with_host_ip = [](std::string ip) {
        return [ip = std::move(ip)](std::string_view name) -> std::optional<std::string> {
            if (name == "HOST_IP") {
                return ip;
            }
            return std::nullopt;
        };
    };
    const std::vector<std::string_view> none;
    EXPECT_EQ(parse(none, with_host_ip("10.240.0.4")).config.pods.kubelet_url,
              "https://10.240.0.4:10250");
    EXPECT_EQ(parse(none, with_host_ip("fd00::4")).config.pods.kubelet_url,
              "https://[fd00::4]:10250");
    EXPECT_EQ(parse(none, with_host_ip("")).config.pods.kubelet_url, "");
    const std::vector<std::string_view> flag{"--kubelet-url=http://127.0.0.1:10255"};
    EXPECT_EQ(parse(flag, with_host_ip("10.240.0.4")).config.pods.kubelet_url,
              "http://127.0.0.1:10255");
}

TEST(ConfigParse, RejectsUnknownChoicesOfNewFlags) {
    const ParseResult backend = parse_args({"--iptables-backend=iptables"});
    EXPECT_EQ(backend.action, Action::error);
    EXPECT_EQ(
        backend.error,
        "invalid value \"iptables\" for flag --iptables-backend: want one of auto, nft, legacy");
    EXPECT_EQ(parse_args({"--pod-source=etcd"}).action, Action::error);
}

}  // namespace
}  // namespace nmid::config
