#include "nmid/iptables/backend.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>

#include "support/recording_command_runner.hpp"

namespace nmid::iptables {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::RecordingCommandRunner;

Detection detect(RecordingCommandRunner& runner, std::string_view dir = {}) {
    asio::io_context ioc;
    std::optional<Detection> out;
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { out = co_await detect_backend(runner, dir, 5s); },
        asio::detached);
    ioc.run();
    EXPECT_TRUE(out.has_value());
    return out.value_or(Detection{});
}

std::string rules(int n) {
    std::string out = "*filter\n:INPUT ACCEPT [0:0]\n";
    for (int i = 0; i < n; ++i) {
        out += "-A INPUT -j ACCEPT\n";
    }
    return out + "COMMIT\n";
}

const std::string kHint = "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n";

TEST(Commands, ArgvPerBackend) {
    const Commands nft{Backend::nft, "", 10, 30s};
    EXPECT_EQ(nft.save_nat().argv, (std::vector<std::string>{"iptables-nft-save", "-t", "nat"}));
    EXPECT_EQ(nft.save_nat().timeout, 30s);
    const Command restore = nft.restore("*nat\nCOMMIT\n");
    EXPECT_EQ(restore.argv,
              (std::vector<std::string>{"iptables-nft-restore", "--wait=10", "--noflush"}));
    EXPECT_EQ(restore.stdin_data, "*nat\nCOMMIT\n");

    const Commands legacy{Backend::legacy, "/usr/sbin", 5, 1s};
    EXPECT_EQ(legacy.save_nat().argv,
              (std::vector<std::string>{"/usr/sbin/iptables-legacy-save", "-t", "nat"}));
    EXPECT_EQ(
        legacy.restore("").argv,
        (std::vector<std::string>{"/usr/sbin/iptables-legacy-restore", "--wait=5", "--noflush"}));
    EXPECT_EQ(legacy.conntrack_delete("169.254.169.254", 80).argv,
              (std::vector<std::string>{"/usr/sbin/conntrack", "-D", "-d", "169.254.169.254", "-p",
                                        "tcp", "--dport", "80", "--reply-src",
                                        "169.254.169.254"}));
    EXPECT_EQ(Commands(Backend::nft, "/sbin/", 1, 1s).save_nat().argv.front(),
              "/sbin/iptables-nft-save");
}

TEST(DetectBackend, KubeletHintInNftMangleStopsAtOnce) {
    RecordingCommandRunner runner;
    runner.push("iptables-nft-save", RecordingCommandRunner::ok(kHint));
    const Detection d = detect(runner);
    EXPECT_EQ(d.backend, Backend::nft);
    EXPECT_EQ(d.reason, "kubelet chains in iptables-nft-save -t mangle");
    EXPECT_EQ(runner.command_lines(), (std::vector<std::string>{"iptables-nft-save -t mangle"}));
}

TEST(DetectBackend, KubeletCanaryInIpv6NftMangle) {
    RecordingCommandRunner runner;
    runner.push("iptables-nft-save", RecordingCommandRunner::ok("*mangle\nCOMMIT\n"));
    runner.push("ip6tables-nft-save",
                RecordingCommandRunner::ok("*mangle\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n"));
    EXPECT_EQ(detect(runner).backend, Backend::nft);
    EXPECT_EQ(runner.calls().size(), 2U);
}

TEST(DetectBackend, KubeletHintInLegacySavesWholeTables) {
    RecordingCommandRunner runner;
    runner.push("/usr/sbin/iptables-nft-save", RecordingCommandRunner::ok(rules(50)));
    runner.push("/usr/sbin/ip6tables-nft-save", RecordingCommandRunner::ok(""));
    runner.push("/usr/sbin/iptables-legacy-save", RecordingCommandRunner::ok(kHint));
    const Detection d = detect(runner, "/usr/sbin");
    EXPECT_EQ(d.backend, Backend::legacy);
    EXPECT_EQ(d.reason, "kubelet chains in iptables-legacy-save");
    // Never `-t mangle` for legacy: it would create the table in the kernel.
    EXPECT_EQ(runner.command_lines(),
              (std::vector<std::string>{"/usr/sbin/iptables-nft-save -t mangle",
                                        "/usr/sbin/ip6tables-nft-save -t mangle",
                                        "/usr/sbin/iptables-legacy-save"}));
}

TEST(DetectBackend, WithoutHintsTheBackendWithMoreRulesWins) {
    struct Case {
        int legacy4, legacy6, nft4, nft6;
        Backend expected;
    };
    const std::vector<Case> cases = {
        {10, 2, 3, 0, Backend::legacy}, {3, 0, 2, 2, Backend::nft},
        {4, 0, 4, 0, Backend::nft},  // tie: nft
        {0, 0, 0, 0, Backend::nft},     {0, 1, 0, 0, Backend::legacy},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(std::to_string(c.legacy4) + "/" + std::to_string(c.nft4));
        RecordingCommandRunner runner;
        runner.on("iptables-nft-save", [&](const Command& cmd) {
            return RecordingCommandRunner::ok(cmd.argv.size() > 1 ? "*mangle\nCOMMIT\n"
                                                                  : rules(c.nft4));
        });
        runner.on("ip6tables-nft-save", [&](const Command& cmd) {
            return RecordingCommandRunner::ok(cmd.argv.size() > 1 ? "" : rules(c.nft6));
        });
        runner.push("iptables-legacy-save", RecordingCommandRunner::ok(rules(c.legacy4)));
        runner.push("ip6tables-legacy-save", RecordingCommandRunner::ok(rules(c.legacy6)));
        const Detection d = detect(runner);
        EXPECT_EQ(d.backend, c.expected);
        EXPECT_EQ(d.reason, "no kubelet chains; legacy " + std::to_string(c.legacy4 + c.legacy6) +
                                " rules, nft " + std::to_string(c.nft4 + c.nft6));
        EXPECT_EQ(runner.calls().size(), 6U);
    }
}

TEST(DetectBackend, NothingInstalledMeansNft) {
    RecordingCommandRunner runner;  // every program: failed to start (ENOENT)
    const Detection d = detect(runner);
    EXPECT_EQ(d.backend, Backend::nft);
    EXPECT_EQ(d.reason, "no kubelet chains; legacy 0 rules, nft 0");
}

TEST(DetectBackend, FailedCommandsCountAsEmpty) {
    RecordingCommandRunner runner;
    runner.on("iptables-nft-save", [](const Command&) {
        return CommandResult{.status = CommandStatus::timed_out, .code = 9, .out = kHint};
    });
    runner.push("iptables-legacy-save", RecordingCommandRunner::ok(rules(3)));
    EXPECT_EQ(detect(runner).backend, Backend::legacy);
}

TEST(ConntrackDeleted, Table) {
    struct Case {
        const char* name;
        CommandResult result;
        std::optional<std::size_t> expected;
    };
    const std::vector<Case> cases = {
        {"none matched (exit 1)",
         RecordingCommandRunner::exit_with(
             1, "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n"),
         0},
        {"three deleted",
         RecordingCommandRunner::exit_with(
             0, "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n"),
         3},
        {"exit 0 without summary", RecordingCommandRunner::exit_with(0), 0},
        {"exit 1 with another error",
         RecordingCommandRunner::exit_with(1,
                                           "conntrack v1.4.7 (conntrack-tools): Operation "
                                           "failed: Operation not permitted\n"),
         std::nullopt},
        {"exit 1 claiming deletions is not success",
         RecordingCommandRunner::exit_with(1, "2 flow entries have been deleted."), std::nullopt},
        {"exit 2", RecordingCommandRunner::exit_with(2, "0 flow entries have been deleted."),
         std::nullopt},
        {"not installed", CommandResult{.status = CommandStatus::failed_to_start, .code = 2},
         std::nullopt},
        {"timed out", CommandResult{.status = CommandStatus::timed_out, .code = 9}, std::nullopt},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(conntrack_deleted(c.result), c.expected);
    }
}

}  // namespace
}  // namespace nmid::iptables
