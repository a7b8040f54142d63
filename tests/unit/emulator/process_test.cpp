// Runs the built imds-emulator binary on a loopback port chosen by the OS.

#include "support/process.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/http_get.hpp"

namespace nmid {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kBinary = NMID_BIN_DIR "/imds-emulator";
constexpr auto kBound = 10s;  // safety net for a broken build, never reached when healthy

bool binary_exists() {
    return ::access(kBinary.c_str(), X_OK) == 0;
}

/// Starts the emulator and returns its port (0 when it never said "listening on").
int start(test::ChildProcess& child) {
    auto line = child.wait_for_line("listening on", kBound);
    if (!line) {
        ADD_FAILURE() << "no 'listening on' line; output: " << child.output();
        return 0;
    }
    EXPECT_EQ(line->rfind("listening on 127.0.0.1:", 0), 0U) << *line;
    return test::port_after(*line, "listening on").value_or(0);
}

json stats(int port) {
    auto response = test::http_get("127.0.0.1", port, "/_emulator/stats");
    if (!response || response->status != 200) {
        ADD_FAILURE() << "stats unavailable";
        return json::object();
    }
    return json::parse(response->body, nullptr, false);
}

TEST(EmulatorProcess, ServesATokenOverLoopbackAndExitsCleanlyOnSigterm) {
    if (!binary_exists()) {
        GTEST_SKIP() << kBinary << " not built";
    }
    test::ChildProcess child{kBinary,
                             {"--listen", "127.0.0.1:0", "--identity",
                              "11111111-2222-4333-8444-555555555555", "--token-lifetime", "1h"}};
    int port = start(child);
    ASSERT_GT(port, 0);

    auto response =
        test::http_get("127.0.0.1", port,
                       "/metadata/identity/oauth2/"
                       "token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net",
                       {{"Metadata", "true"}});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->headers["content-type"], "application/json; charset=utf-8");
    auto body = json::parse(response->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << response->body;
    EXPECT_EQ(body["resource"], "https://vault.azure.net");
    EXPECT_EQ(body["client_id"], "11111111-2222-4333-8444-555555555555");
    EXPECT_EQ(body["expires_in"], "3600");
    EXPECT_EQ(stats(port)["token_requests"], 1);

    EXPECT_EQ(child.signal_and_wait(SIGTERM, kBound), 0) << child.output();
}

TEST(EmulatorProcess, SigtermEndsAHangingRequestAndExitsZero) {
    if (!binary_exists()) {
        GTEST_SKIP() << kBinary << " not built";
    }
    test::ChildProcess child{kBinary, {"--identity", "cid", "--fault", "hang"}};
    int port = start(child);
    ASSERT_GT(port, 0);

    auto hung = std::async(std::launch::async, [port] {
        return test::http_get("127.0.0.1", port,
                              "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r",
                              {{"Metadata", "true"}});
    });
    // Each probe is a full request/response, so this loop advances with the server.
    bool hanging = false;
    for (int i = 0; i < 1000 && !hanging; ++i) {
        hanging = stats(port).value("in_flight_token_requests", 0) == 1;
    }
    ASSERT_TRUE(hanging);

    EXPECT_EQ(child.signal_and_wait(SIGTERM, kBound), 0) << child.output();
    auto answer = hung.get();
    EXPECT_TRUE(!answer || answer->status == 0) << "a hang ends with a reset, not an answer";
}

TEST(EmulatorProcess, UnknownFlagExitsTwoWithOneLine) {
    if (!binary_exists()) {
        GTEST_SKIP() << kBinary << " not built";
    }
    test::ChildProcess child{kBinary, {"--no-such-flag"}};
    auto line = child.wait_for_line("unknown flag --no-such-flag", kBound);
    ASSERT_TRUE(line) << child.output();
    EXPECT_EQ(child.signal_and_wait(0, kBound), 2);
    EXPECT_EQ(std::count(child.output().begin(), child.output().end(), '\n'), 1);
}

TEST(EmulatorProcess, HelpExitsZero) {
    if (!binary_exists()) {
        GTEST_SKIP() << kBinary << " not built";
    }
    test::ChildProcess child{kBinary, {"--help"}};
    ASSERT_TRUE(child.wait_for_line("--fault SPEC", kBound)) << child.output();
    EXPECT_EQ(child.signal_and_wait(0, kBound), 0);
}

}  // namespace
}  // namespace nmid
