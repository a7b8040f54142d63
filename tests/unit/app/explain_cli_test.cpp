#include "nmid/app/explain_cli.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace nmid::app {
namespace {

std::variant<ExplainArgs, std::string> parse(std::vector<std::string_view> args) {
    return parse_explain_args(args);
}

TEST(ExplainCliTest, BuildsTheQueryWithValuesEncoded) {
    struct Row {
        std::vector<std::string_view> args;
        std::string query;
        std::string host;
        std::uint16_t port;
    };
    const std::vector<Row> rows{
        {{"--ip", "10.0.0.5"}, "ip=10.0.0.5", "127.0.0.1", 8086},
        {{"--ip=fd00::5", "--json"}, "ip=fd00%3A%3A5&format=json", "127.0.0.1", 8086},
        {{"--pod", "default/web-1"}, "namespace=default&pod=web-1", "127.0.0.1", 8086},
        {{"--pod=a&b/c d", "--debug-address", "[::1]:9000"},
         "namespace=a%26b&pod=c%20d",
         "::1",
         9000},
    };
    for (const auto& r : rows) {
        const auto parsed = parse(r.args);
        ASSERT_TRUE(std::holds_alternative<ExplainArgs>(parsed)) << std::get<std::string>(parsed);
        const auto& a = std::get<ExplainArgs>(parsed);
        EXPECT_EQ(a.query, r.query);
        EXPECT_EQ(a.host, r.host);
        EXPECT_EQ(a.port, r.port);
    }
    EXPECT_TRUE(std::get<ExplainArgs>(parse({"--help"})).help);
}

TEST(ExplainCliTest, RefusesAmbiguousOrMalformedArguments) {
    const std::vector<std::pair<std::vector<std::string_view>, std::string>> rows{
        {{}, "give exactly one of --ip POD_IP or --pod NAMESPACE/NAME"},
        {{"--ip", "1.2.3.4", "--pod", "a/b"},
         "give exactly one of --ip POD_IP or --pod NAMESPACE/NAME"},
        {{"--pod", "default"}, "--pod must be NAMESPACE/NAME"},
        {{"--pod", "/web"}, "--pod must be NAMESPACE/NAME"},
        {{"--pod", "default/"}, "--pod must be NAMESPACE/NAME"},
        {{"--ip"}, "unknown argument or missing value: \"--ip\""},
        {{"--ipx=1"}, "unknown argument or missing value: \"--ipx=1\""},
        {{"--verbose"}, "unknown argument \"--verbose\""},
        {{"--ip", "1.2.3.4", "--debug-address", "localhost:8086"},
         "--debug-address: not IP:PORT or [IPv6]:PORT"},
    };
    for (const auto& [args, error] : rows) {
        const auto parsed = parse(args);
        ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << error;
        EXPECT_EQ(std::get<std::string>(parsed), error);
    }
}

}  // namespace
}  // namespace nmid::app
