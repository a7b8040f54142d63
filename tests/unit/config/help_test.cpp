#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "nmid/config/config.hpp"

namespace nmid::config {
namespace {

using test::parse_args;

std::string help_line(const FlagInfo& flag) {
    const std::string text = help_text();
    const std::string marker = "--" + std::string(flag.name) + (flag.is_bool ? "" : " ");
    std::size_t pos = 0;
    // The flag's own line: the marker preceded by its indentation ("  -h, " or six spaces).
    while ((pos = text.find(marker, pos)) != std::string::npos) {
        const std::size_t start = text.rfind('\n', pos) + 1;
        const std::string prefix = text.substr(start, pos - start);
        if (prefix == "      " || (prefix.size() == 6 && prefix.starts_with("  -"))) {
            // Long left columns put the description on the next line.
            std::size_t end = text.find('\n', pos);
            if (text.compare(end + 1, 10, std::string(10, ' ')) == 0) {
                end = text.find('\n', end + 1);
            }
            return text.substr(start, end - start);
        }
        pos += marker.size();
    }
    return {};
}

TEST(ConfigHelp, ListsEveryFlagWithItsHelpAndDefault) {
    ASSERT_FALSE(flags().empty());
    for (const FlagInfo& flag : flags()) {
        SCOPED_TRACE(std::string(flag.name));
        const std::string line = help_line(flag);
        ASSERT_FALSE(line.empty()) << "--" << flag.name << " is missing from the help";
        EXPECT_NE(line.find(flag.help), std::string::npos) << line;
        if (!flag.is_bool) {
            EXPECT_NE(line.find("--" + std::string(flag.name) + " " + std::string(flag.value_name)),
                      std::string::npos)
                << line;
        }
        if (flag.shorthand != '\0') {
            EXPECT_NE(line.find(std::string("-") + flag.shorthand + ", --"), std::string::npos)
                << line;
        }
        if (!flag.default_text.empty()) {
            EXPECT_NE(line.find("(default " + flag.default_text + ")"), std::string::npos) << line;
        } else {
            EXPECT_EQ(line.find("(default"), std::string::npos) << line;
        }
    }
}

TEST(ConfigHelp, GroupsFlagsUnderHeadingsInTableOrder) {
    const std::string text = help_text();
    const std::vector<std::string> headings{
        "NMI-compatible flags",     "Standalone mode", "Kubernetes", "Listener",
        "Token cache and upstream", "Logging",         "iptables:"};
    std::size_t previous = 0;
    for (const std::string& heading : headings) {
        const std::size_t pos = text.find("\n" + heading);
        ASSERT_NE(pos, std::string::npos) << heading;
        EXPECT_GT(pos, previous) << heading;
        previous = pos;
    }
    // Flags come out grouped: the group never goes back.
    for (std::size_t i = 1; i < flags().size(); ++i) {
        EXPECT_LE(static_cast<int>(flags()[i - 1].group), static_cast<int>(flags()[i].group));
    }
    EXPECT_NE(text.find("NODE_NAME"), std::string::npos);
    EXPECT_NE(text.find("FORCENAMESPACED"), std::string::npos);
    EXPECT_NE(text.find("implies --forceNamespaced"), std::string::npos);
    EXPECT_TRUE(text.ends_with("\n"));
}

TEST(ConfigHelp, FlagTableIsWellFormed) {
    std::set<std::string> names;
    std::set<char> shorthands;
    for (const FlagInfo& flag : flags()) {
        SCOPED_TRACE(std::string(flag.name));
        EXPECT_TRUE(names.insert(std::string(flag.name)).second) << "duplicate";
        if (flag.shorthand != '\0') {
            EXPECT_TRUE(shorthands.insert(flag.shorthand).second) << "duplicate shorthand";
        }
        EXPECT_FALSE(flag.help.empty());
        EXPECT_EQ(flag.help.find('\n'), std::string_view::npos);
        EXPECT_EQ(flag.is_bool, flag.value_name.empty());
    }
}

TEST(ConfigHelp, EveryPrintedDefaultParsesBackToTheDefault) {
    const ParseResult defaults = parse_args({});
    for (const FlagInfo& flag : flags()) {
        if (flag.default_text.empty() || flag.default_text.starts_with("$")) {
            continue;
        }
        SCOPED_TRACE(std::string(flag.name));
        const ParseResult result =
            parse_args({"--" + std::string(flag.name) + "=" + flag.default_text});
        ASSERT_EQ(result.action, flag.name == "help"      ? Action::help
                                 : flag.name == "version" ? Action::version
                                                          : Action::run)
            << result.error;
        // Re-rendered through the table, the value is unchanged.
        EXPECT_EQ(result.config.server.port, defaults.config.server.port);
        EXPECT_EQ(result.config.cache.rate_per_second, defaults.config.cache.rate_per_second);
        EXPECT_EQ(result.config.shutdown_grace, defaults.config.shutdown_grace);
        EXPECT_EQ(result.config.iptables.update_interval, defaults.config.iptables.update_interval);
        EXPECT_EQ(result.config.identity.mode, defaults.config.identity.mode);
        EXPECT_EQ(result.config.log.level, defaults.config.log.level);
    }
}

struct DefaultRow {
    std::string flag;
    std::string shown;
};

TEST(ConfigHelp, ShowsNmiDefaults) {
    const std::vector<DefaultRow> rows{
        {"nmi-listen-address", "127.0.0.1"},
        {"nmi-port", "2579"},
        {"metadata-ip", "169.254.169.254"},
        {"metadata-port", "80"},
        {"node", "$NODE_NAME"},
        {"ipt-update-interval-sec", "60"},
        {"forceNamespaced", ""},
        {"MICNamespace", "default"},
        {"http-probe-port", "8080"},
        {"retry-attempts-for-created", "16"},
        {"retry-attempts-for-assigned", "4"},
        {"find-identity-retry-interval", "5"},
        {"enableProfile", ""},
        {"enableScaleFeatures", "true"},
        {"block-instance-metadata", ""},
        {"metadata-header-required", "true"},
        {"prometheus-port", "9090"},
        {"operation-mode", "standard"},
        {"allow-network-plugin-kubenet", ""},
        {"kubelet-config", "/etc/default/kubelet"},
        {"set-retry-after-header", ""},
        {"enable-conntrack-deletion", "true"},  // NMI: false; nmid fails closed
        {"log-format", "text"},
        {"custom-user-agent", ""},
        {"v", "0"},
        {"manage-iptables", "true"},
        {"io-threads", "1"},
        {"log-level", "info"},
        {"shutdown-grace", "5s"},
        {"token-refresh-margin", "5m"},
        {"token-negative-ttl", "5s"},
        {"token-cache-max-entries", "10000"},
        {"token-fetch-deadline", "15s"},
        {"token-min-remaining", "1m"},
        {"upstream-max-concurrency", "5"},
        {"upstream-rate-limit", "20"},
        {"upstream-connect-timeout", "2s"},
        {"proxy-timeout", "10s"},
        {"max-connections", "4096"},
        {"max-connections-per-pod", "64"},
        {"read-timeout", "10s"},
        {"idle-timeout", "1m30s"},
        {"pod-poll-interval", "1s"},
        {"pod-refresh-deadline", "2s"},
        {"crd-poll-interval", "1s"},
        {"logtostderr", ""},
        // Issue 11: token cache per-pod fairness.
        {"token-cache-max-bytes", "16777216"},
        {"max-tokens-per-pod", "64"},
        {"max-upstream-fetches-per-pod", "2"},
        {"max-pending-fetches-per-pod", "32"},
    };
    for (const DefaultRow& row : rows) {
        SCOPED_TRACE(row.flag);
        bool found = false;
        for (const FlagInfo& flag : flags()) {
            if (flag.name == row.flag) {
                found = true;
                EXPECT_EQ(flag.default_text, row.shown);
            }
        }
        EXPECT_TRUE(found);
    }
}

TEST(ConfigVersion, IsNmiShapedAndNamesNmid) {
    const std::string text = version_text();
    EXPECT_FALSE(version().empty());
    EXPECT_TRUE(text.starts_with("MIC Version: ")) << text;
    EXPECT_NE(text.find(" - NMI Version: nmid " + std::string(version()) + " - Commit: "),
              std::string::npos)
        << text;
    EXPECT_NE(text.find(" - Date: "), std::string::npos) << text;
    EXPECT_EQ(text.find('\n'), std::string::npos);  // main() prints it with puts()
    EXPECT_EQ(text, version_text(version(), commit(), build_date()));
    EXPECT_FALSE(commit().empty());
    EXPECT_FALSE(build_date().empty());
}

TEST(ConfigVersion, PrintsTheStampsItIsGiven) {
    EXPECT_EQ(version_text("0.2.0-3-gabc1234", "abc1234def", "2026-12-06T16:00:00Z"),
              "MIC Version: n/a - NMI Version: nmid 0.2.0-3-gabc1234 - Commit: abc1234def"
              " - Date: 2026-12-06T16:00:00Z");
    EXPECT_EQ(version_text("0.1.0", "", ""),
              "MIC Version: n/a - NMI Version: nmid 0.1.0 - Commit: unknown - Date: unknown");
}

}  // namespace
}  // namespace nmid::config
