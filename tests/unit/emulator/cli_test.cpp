#include "nmid/emulator/cli.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace nmid::emulator {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

TEST(EmulatorCli, ParsesGoDurations) {
    struct Row {
        std::string_view text;
        std::optional<nanoseconds> expected;
    };
    const std::vector<Row> rows = {
        {"0", 0ns},
        {"24h", 24h},
        {"90m", 90min},
        {"1h30m", 90min},
        {"300ms", 300ms},
        {"1.5s", 1500ms},
        {".5s", 500ms},
        {"2s500ms", 2500ms},
        {"10us", 10us},
        {"7ns", 7ns},
        {"1m0.25s", 60250ms},
        {"", std::nullopt},
        {"5", std::nullopt},
        {"-1s", std::nullopt},
        {"1x", std::nullopt},
        {"s", std::nullopt},
        {"1.2.3s", std::nullopt},
        {"1h ", std::nullopt},
        {"99999h", std::nullopt},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.text);
        auto d = parse_duration(row.text);
        ASSERT_EQ(d.has_value(), row.expected.has_value());
        if (row.expected) {
            EXPECT_EQ(*d, *row.expected);
        }
    }
}

TEST(EmulatorCli, ParsesIdentities) {
    struct Row {
        std::string_view text;
        std::optional<Identity> expected;
    };
    const std::string arm =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
        "userAssignedIdentities/id1";
    const std::string with_res = "cid:" + arm;
    const std::string with_all = "cid:" + arm + ":oid";
    const std::vector<Row> rows = {
        {"cid", Identity{.client_id = "cid", .resource_id = "", .object_id = ""}},
        {with_res, Identity{.client_id = "cid", .resource_id = arm, .object_id = ""}},
        {with_all, Identity{.client_id = "cid", .resource_id = arm, .object_id = "oid"}},
        {"cid::oid", Identity{.client_id = "cid", .resource_id = "", .object_id = "oid"}},
        {"", std::nullopt},
        {":res", std::nullopt},
        {"a:b:c:d", std::nullopt},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.text);
        auto identity = parse_identity(row.text);
        ASSERT_EQ(identity.has_value(), row.expected.has_value());
        if (row.expected) {
            EXPECT_EQ(identity->client_id, row.expected->client_id);
            EXPECT_EQ(identity->resource_id, row.expected->resource_id);
            EXPECT_EQ(identity->object_id, row.expected->object_id);
        }
    }
}

TEST(EmulatorCli, ParsesFaultSpecs) {
    struct Row {
        std::string_view text;
        std::optional<Fault> expected;
    };
    const std::vector<Row> rows = {
        {"500", Fault{.status = 500}},
        {"404", Fault{.status = 404}},
        {"429", Fault{.status = 429, .retry_after = 1s}},
        {"429:retry-after=2", Fault{.status = 429, .retry_after = 2s}},
        {"retry-after=5:503", Fault{.status = 503, .retry_after = 5s}},
        {"hang", Fault{.hang = true}},
        {"reset", Fault{.reset = true}},
        {"ok", Fault{}},
        {"latency=300ms", Fault{.latency = 300ms}},
        {"500:latency=1.5s", Fault{.status = 500, .latency = 1500ms}},
        {"", std::nullopt},
        {"99", std::nullopt},
        {"600", std::nullopt},
        {"hang:reset", std::nullopt},
        {"500:404", std::nullopt},
        {"429:retry-after=x", std::nullopt},
        {"429:retry-after=-1", std::nullopt},
        {"latency=fast", std::nullopt},
        {"500:", std::nullopt},
        {"slow", std::nullopt},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.text);
        auto fault = parse_fault_spec(row.text);
        ASSERT_EQ(fault.has_value(), row.expected.has_value());
        if (row.expected) {
            EXPECT_EQ(*fault, *row.expected);
        }
    }
}

TEST(EmulatorCli, ParsesListenAddresses) {
    struct Row {
        std::string_view text;
        std::optional<std::pair<std::string, std::uint16_t>> expected;
    };
    const std::vector<Row> rows = {
        {"127.0.0.1:0", std::pair{std::string{"127.0.0.1"}, std::uint16_t{0}}},
        {"0.0.0.0:8080", std::pair{std::string{"0.0.0.0"}, std::uint16_t{8080}}},
        {"localhost:9", std::pair{std::string{"127.0.0.1"}, std::uint16_t{9}}},
        {"[::1]:65535", std::pair{std::string{"::1"}, std::uint16_t{65535}}},
        {"::1:80", std::nullopt},
        {"127.0.0.1", std::nullopt},
        {"127.0.0.1:65536", std::nullopt},
        {"127.0.0.1:x", std::nullopt},
        {"example.com:80", std::nullopt},
        {"[::1]80", std::nullopt},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.text);
        auto listen = parse_listen(row.text);
        ASSERT_EQ(listen.has_value(), row.expected.has_value());
        if (row.expected) {
            EXPECT_EQ(*listen, *row.expected);
        }
    }
}

Result<CommandLine> parse(std::vector<std::string_view> args, std::string& error) {
    return parse_command_line(args, error);
}

TEST(EmulatorCli, DefaultsMatchTheDocumentation) {
    std::string error;
    auto cli = parse({}, error);
    ASSERT_TRUE(cli) << error;
    EXPECT_EQ(cli->host, "127.0.0.1");
    EXPECT_EQ(cli->port, 0);
    EXPECT_FALSE(cli->help);
    EXPECT_EQ(cli->settings.token_lifetime, 24h);
    EXPECT_EQ(cli->settings.latency, 0ms);
    EXPECT_TRUE(cli->settings.user_assigned.empty());
    EXPECT_FALSE(cli->settings.system_assigned);
    EXPECT_TRUE(cli->settings.faults.empty());
}

TEST(EmulatorCli, ParsesEveryFlagInBothForms) {
    std::string error;
    auto cli = parse(
        {"--listen", "127.0.0.1:18080", "--identity", "a:/subscriptions/x/id", "--identity=b::ob",
         "--system-assigned", "sys", "--token-lifetime=90m", "--latency", "25ms", "--fault", "500",
         "--fault=429:retry-after=2", "--fault", "hang", "--fault", "reset", "--fault", "404"},
        error);
    ASSERT_TRUE(cli) << error;
    EXPECT_EQ(cli->port, 18080);
    ASSERT_EQ(cli->settings.user_assigned.size(), 2U);
    EXPECT_EQ(cli->settings.user_assigned[0].resource_id, "/subscriptions/x/id");
    EXPECT_EQ(cli->settings.user_assigned[1].object_id, "ob");
    ASSERT_TRUE(cli->settings.system_assigned);
    EXPECT_EQ(cli->settings.system_assigned->client_id, "sys");
    EXPECT_EQ(cli->settings.token_lifetime, 90min);
    EXPECT_EQ(cli->settings.latency, 25ms);
    EXPECT_EQ(
        cli->settings.faults,
        (std::vector<Fault>{Fault{.status = 500}, Fault{.status = 429, .retry_after = 2s},
                            Fault{.hang = true}, Fault{.reset = true}, Fault{.status = 404}}));
}

TEST(EmulatorCli, ReportsErrorsInOneLine) {
    struct Row {
        std::vector<std::string_view> args;
        std::string_view message;  ///< substring
    };
    const std::vector<Row> rows = {
        {{"--bogus"}, "unknown flag --bogus"},
        {{"--bogus=1"}, "unknown flag --bogus"},
        {{"positional"}, "unknown flag positional"},
        {{"--listen"}, "missing value for --listen"},
        {{"--listen", "nowhere"}, "--listen: expected HOST:PORT"},
        {{"--identity", "a", "--identity", "A"}, "given twice"},
        {{"--identity", "a", "--system-assigned", "a"}, "given twice"},
        {{"--system-assigned", "a", "--system-assigned", "b"}, "given twice"},
        {{"--token-lifetime", "500ms"}, "--token-lifetime"},
        {{"--latency", "soon"}, "--latency"},
        {{"--fault", "slow"}, "--fault: expected"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.message);
        std::string error;
        auto cli = parse(row.args, error);
        ASSERT_FALSE(cli);
        EXPECT_EQ(cli.error(), Errc::invalid_config);
        EXPECT_NE(error.find(row.message), std::string::npos) << error;
        EXPECT_EQ(error.find('\n'), std::string::npos);
    }
}

TEST(EmulatorCli, HelpIsAFlagNotAnError) {
    std::string error;
    auto cli = parse({"--identity", "a", "--help"}, error);
    ASSERT_TRUE(cli);
    EXPECT_TRUE(cli->help);
    EXPECT_NE(usage().find("--fault SPEC"), std::string_view::npos);
}

}  // namespace
}  // namespace nmid::emulator
