// `nmid explain` against the standalone example (deploy/standalone): for each of its pods, the
// answer that pod gets, asked of a running nmid through its debug listener.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon_fixture.hpp"

namespace nmid {
namespace {

using namespace nmid::test;  // the fixture's constants (kVault, kClientId, ...)

struct CliResult {
    int status = -1;
    std::string output;
};

class ExplainCli : public DaemonTest {
protected:
    CliResult explain(std::vector<std::string> args) {
        args.insert(args.begin(), "explain");
        args.push_back("--debug-address=127.0.0.1:" + std::to_string(debug_port_));
        ChildProcess cli(bin("nmid"), args);
        CliResult r;
        r.status = cli.signal_and_wait(0, kStartTimeout);  // signal 0: just wait for the exit
        r.output = cli.output();
        return r;
    }
};

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST_F(ExplainCli, ExplainsTheAnswerOfEachStandalonePod) {
    start_emulator();
    start_nmid();
    ASSERT_GT(debug_port_, 0);
    auto fetched = token("127.0.0.2", kVault);
    ASSERT_TRUE(fetched && fetched->status == 200);

    const auto bound = explain({"--ip", "127.0.0.2"});
    EXPECT_EQ(bound.status, 0) << bound.output;
    EXPECT_TRUE(contains(bound.output, "pod: default/demo\n")) << bound.output;
    EXPECT_TRUE(contains(bound.output,
                         "  yes binding default/kv-reader-binding: selector "
                         "\"kv-reader\" matches"));
    EXPECT_TRUE(contains(bound.output,
                         "answer: token for AzureIdentity default/kv-reader (type "
                         "0, client 0000##### REDACTED #####00a1)"));
    EXPECT_TRUE(contains(bound.output, "  default/kv-reader https://vault.azure.net: expires "));
    EXPECT_TRUE(contains(bound.output, "last error none"));
    EXPECT_FALSE(contains(bound.output, kClientId));
    EXPECT_FALSE(contains(bound.output, "access_token"));

    const auto unbound = explain({"--pod", "default/unbound"});
    EXPECT_EQ(unbound.status, 0) << unbound.output;
    EXPECT_TRUE(contains(unbound.output,
                         "answer: denied (no_binding_label): failed to get AzureIdentities for "
                         "pod default/unbound, error: pod has no aadpodidbinding label"))
        << unbound.output;

    const auto excepted = explain({"--ip=127.0.0.4", "--json"});
    EXPECT_EQ(excepted.status, 0) << excepted.output;
    const auto json = nlohmann::json::parse(excepted.output, nullptr, false);
    ASSERT_TRUE(json.is_object()) << excepted.output;
    EXPECT_EQ(json["pod"]["name"], "aks-agent");
    EXPECT_EQ(json["answer"]["kind"], "excepted");
    EXPECT_EQ(json["considered"][0]["name"], "aks-addon-exception");
    EXPECT_EQ(json["considered"][0]["matched"], true);

    const auto unknown = explain({"--ip", "127.0.0.9"});
    EXPECT_EQ(unknown.status, 0);
    EXPECT_TRUE(
        contains(unknown.output, "pod: not found (pod_not_found): no pod with IP 127.0.0.9"))
        << unknown.output;
}

TEST_F(ExplainCli, BadArgumentsExitTwoAndAnUnreachableDaemonExitsOne) {
    ChildProcess bad(bin("nmid"), {"explain", "--pod", "no-slash"});
    EXPECT_EQ(bad.signal_and_wait(0, kStartTimeout), 2);
    EXPECT_TRUE(contains(bad.output(), "--pod must be NAMESPACE/NAME"));

    // A port bound here but not listening: connects to it are refused, and nobody else can
    // take it while the socket is open.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const std::string endpoint = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    ChildProcess nobody(bin("nmid"), {"explain", "--ip", "127.0.0.2", "--debug-address", endpoint});
    EXPECT_EQ(nobody.signal_and_wait(0, kStartTimeout), 1);
    EXPECT_TRUE(contains(nobody.output(), "cannot ask nmid at " + endpoint)) << nobody.output();
    ::close(fd);
}

TEST_F(ExplainCli, AnEmptyDebugAddressTurnsTheListenerOff) {
    start_emulator();
    start_nmid({"--debug-address="});
    EXPECT_EQ(debug_port_, -1);
}

}  // namespace
}  // namespace nmid
