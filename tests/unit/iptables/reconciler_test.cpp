#include "nmid/iptables/reconciler.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "support/manual_clock.hpp"
#include "support/recording_command_runner.hpp"

namespace nmid::iptables {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::ManualClock;
using test::RecordingCommandRunner;

const std::string kDnatRule =
    "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT "
    "--to-destination 127.0.0.1:2579";

std::string nat(const std::string& body) {
    return "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + body + "COMMIT\n";
}

const std::string kEmpty = nat("-A PREROUTING -j KUBE-SERVICES\n");
const std::string kInSync =
    nat(":aad-metadata - [0:0]\n-A PREROUTING -j aad-metadata\n"
        "-A PREROUTING -j KUBE-SERVICES\n" +
        kDnatRule + "\n-A aad-metadata -j RETURN\n");
const std::string kFullRestore = "*nat\n:aad-metadata - [0:0]\n-I PREROUTING 1 -j aad-metadata\n" +
                                 kDnatRule + "\n-A aad-metadata -j RETURN\nCOMMIT\n";

// The nat table as the scripted iptables binaries see it: save prints `table`; restore
// records its input and, when `restore_fixes`, leaves the table in sync (or empty, for a
// cleanup input).
struct FakeNat {
    explicit FakeNat(RecordingCommandRunner& runner, const std::string& prefix = "iptables-nft") {
        runner.on(prefix + "-save", [this](const Command&) {
            if (save_failure) {
                return *save_failure;
            }
            return RecordingCommandRunner::ok(table);
        });
        runner.on(prefix + "-restore", [this](const Command& c) {
            restores.push_back(c.stdin_data);
            if (restore_failure) {
                return *restore_failure;
            }
            if (restore_fixes) {
                table =
                    c.stdin_data.find("-X aad-metadata") != std::string::npos ? kEmpty : kInSync;
            }
            return RecordingCommandRunner::ok();
        });
    }
    std::string table = kEmpty;
    bool restore_fixes = true;
    std::optional<CommandResult> save_failure;
    std::optional<CommandResult> restore_failure;
    std::vector<std::string> restores;
};

Settings nft_settings() {
    Settings s;
    s.backend = BackendChoice::nft;
    s.enable_conntrack_deletion = false;  // on by default; the conntrack tests turn it on
    s.proc_root = "/nonexistent-proc-for-tests";
    return s;
}

template <class T>
T await(asio::io_context& ioc, asio::awaitable<T> task) {
    std::optional<T> out;
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(task)); },
        asio::detached);
    ioc.restart();
    ioc.run();
    EXPECT_TRUE(out.has_value());
    return std::move(*out);
}

TEST(Reconciler, InSyncReadsOnceAndRestoresNothing) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    fake.table = kInSync;
    Reconciler reconciler{nft_settings(), runner, clock};

    const Result<SyncReport> r = await(ioc, reconciler.sync_once());
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->changed);
    EXPECT_EQ(runner.command_lines(), (std::vector<std::string>{"iptables-nft-save -t nat"}));
    const ReconcilerStats s = reconciler.stats();
    EXPECT_EQ(s.syncs, 1U);
    EXPECT_EQ(s.applies, 0U);
    EXPECT_EQ(s.errors, 0U);
    EXPECT_TRUE(s.in_sync);
    EXPECT_TRUE(s.ever_in_sync);
    EXPECT_EQ(s.last_success, clock.wall_now());
    EXPECT_EQ(s.backend, Backend::nft);
    EXPECT_EQ(s.backend_reason, "--iptables-backend");
}

TEST(Reconciler, AppliesWithNoflushAndLockWaitThenVerifies) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    Reconciler reconciler{nft_settings(), runner, clock};

    const Result<SyncReport> r = await(ioc, reconciler.sync_once());
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->changed);
    EXPECT_EQ(r->reasons, (std::vector<std::string>{"chain missing", "jump missing"}));
    EXPECT_EQ(runner.command_lines(),
              (std::vector<std::string>{"iptables-nft-save -t nat",
                                        "iptables-nft-restore --wait=10 --noflush",
                                        "iptables-nft-save -t nat"}));
    EXPECT_EQ(fake.restores, (std::vector<std::string>{kFullRestore}));
    EXPECT_EQ(runner.calls()[1].timeout, 30s);
    EXPECT_EQ(reconciler.stats().applies, 1U);
    EXPECT_TRUE(reconciler.stats().in_sync);
}

TEST(Reconciler, LegacyBackendUsesLegacyBinaries) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner, "/sbin/iptables-legacy"};
    Settings settings = nft_settings();
    settings.backend = BackendChoice::legacy;
    settings.binary_dir = "/sbin";
    settings.lock_wait_seconds = 3;
    Reconciler reconciler{settings, runner, clock};
    ASSERT_TRUE(await(ioc, reconciler.sync_once()));
    EXPECT_EQ(runner.command_lines()[1], "/sbin/iptables-legacy-restore --wait=3 --noflush");
}

TEST(Reconciler, TargetAndPortsComeFromSettings) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    fake.restore_fixes = false;
    Settings settings = nft_settings();
    settings.target_ip = "0.0.0.0";  // NMI: listening everywhere still DNATs to loopback
    settings.target_port = 2580;
    settings.metadata_port = 8080;
    Reconciler reconciler{settings, runner, clock};
    (void)await(ioc, reconciler.sync_once());
    ASSERT_EQ(fake.restores.size(), 1U);
    EXPECT_NE(fake.restores[0].find("--dport 8080 -j DNAT --to-destination 127.0.0.1:2580\n"),
              std::string::npos)
        << fake.restores[0];
}

TEST(Reconciler, VerifyFailureIsAnError) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    fake.restore_fixes = false;  // restore "succeeds" but nothing changes
    Reconciler reconciler{nft_settings(), runner, clock};

    const Result<SyncReport> r = await(ioc, reconciler.sync_once());
    EXPECT_EQ(r.error(), make_error_code(Errc::io_error));
    const ReconcilerStats s = reconciler.stats();
    EXPECT_EQ(s.errors, 1U);
    EXPECT_EQ(s.consecutive_errors, 1U);
    EXPECT_FALSE(s.in_sync);
    EXPECT_FALSE(s.ever_in_sync);
    EXPECT_EQ(s.last_error, "rules still differ after restore: chain missing, jump missing");
}

TEST(Reconciler, RestoreAndSaveFailuresCarryTheirText) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    fake.restore_failure =
        RecordingCommandRunner::exit_with(4, "iptables-restore: line 3 failed\n");
    Reconciler reconciler{nft_settings(), runner, clock};

    EXPECT_FALSE(await(ioc, reconciler.sync_once()));
    EXPECT_EQ(reconciler.stats().last_error,
              "iptables-nft-restore: exit status 4: iptables-restore: line 3 failed (fixing chain "
              "missing, jump missing)");

    fake.save_failure = CommandResult{.status = CommandStatus::failed_to_start, .code = ENOENT};
    EXPECT_FALSE(await(ioc, reconciler.sync_once()));
    EXPECT_EQ(reconciler.stats().last_error,
              "iptables-nft-save -t nat: failed to start: No such file or directory");
    EXPECT_EQ(reconciler.stats().errors, 2U);
    EXPECT_EQ(reconciler.stats().consecutive_errors, 2U);

    fake.save_failure.reset();
    fake.restore_failure.reset();
    ASSERT_TRUE(await(ioc, reconciler.sync_once()));
    const ReconcilerStats s = reconciler.stats();
    EXPECT_EQ(s.consecutive_errors, 0U);
    EXPECT_EQ(s.errors, 2U);
    EXPECT_TRUE(s.in_sync);
    EXPECT_NE(s.last_error, "");  // kept for /readyz history
}

TEST(Reconciler, RunRetriesWithBackoffThenKeepsTheInterval) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    fake.save_failure = RecordingCommandRunner::exit_with(1, "Another app holds the lock\n");
    Settings settings = nft_settings();
    settings.retry_base = 1000ms;
    settings.retry_cap = 60'000ms;
    settings.update_interval = 30s;
    Reconciler reconciler{settings, runner, clock};

    asio::cancellation_signal stop;
    bool finished = false;
    asio::co_spawn(ioc, reconciler.run(),
                   asio::bind_cancellation_slot(stop.slot(), [&](const std::exception_ptr& e) {
                       EXPECT_FALSE(e);
                       finished = true;
                   }));
    ioc.poll();
    EXPECT_EQ(reconciler.stats().errors, 1U);
    ASSERT_EQ(clock.waiters(), 1U);

    // Failed attempts wait base * 2^(n-1), jittered into [half, full], capped by the interval.
    const std::vector<std::pair<std::chrono::milliseconds, std::chrono::milliseconds>> bounds = {
        {500ms, 1000ms},   {1000ms, 2000ms},   {2000ms, 4000ms},  {4000ms, 8000ms},
        {8000ms, 16000ms}, {15000ms, 30000ms}, {15000ms, 30000ms}};
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        SCOPED_TRACE(i);
        const auto delay = clock.next_deadline() - clock.steady_now();
        EXPECT_GE(delay, bounds[i].first);
        EXPECT_LE(delay, bounds[i].second);
        clock.advance(delay);
        ioc.poll();
        EXPECT_EQ(reconciler.stats().errors, i + 2);
    }

    fake.save_failure.reset();
    clock.advance(clock.next_deadline() - clock.steady_now());
    ioc.poll();
    EXPECT_TRUE(reconciler.stats().in_sync);
    EXPECT_EQ(reconciler.stats().applies, 1U);
    EXPECT_EQ(clock.next_deadline() - clock.steady_now(), 30s);

    // In sync: the next read comes one interval later and changes nothing.
    runner.clear_calls();
    clock.advance(30s);
    ioc.poll();
    EXPECT_EQ(runner.command_lines(), (std::vector<std::string>{"iptables-nft-save -t nat"}));
    EXPECT_EQ(reconciler.stats().syncs, 10U);

    // Someone deletes our rules: the next tick puts them back.
    fake.table = kEmpty;
    clock.advance(30s);
    ioc.poll();
    EXPECT_EQ(reconciler.stats().applies, 2U);
    EXPECT_TRUE(reconciler.stats().in_sync);

    EXPECT_FALSE(finished);
    stop.emit(asio::cancellation_type::terminal);
    ioc.poll();
    EXPECT_TRUE(finished);
    EXPECT_EQ(clock.waiters(), 0U);
}

// Fail closed at start-up (app::Daemon::start syncs once before anything is read, then
// spawns run()): a failed first sync leaves the rules unverified (not ready), run() retries
// at once, then with backoff, and conntrack deletion (on by default) runs only after a sync
// verified the rules.
TEST(Reconciler, FailedFirstSyncIsRetriedAtOnceThenWithBackoff) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    runner.push("conntrack",
                RecordingCommandRunner::exit_with(
                    0, "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.\n"));
    fake.save_failure = RecordingCommandRunner::exit_with(4, "Another app holds the lock\n");
    Settings settings = nft_settings();
    settings.enable_conntrack_deletion = Settings{}.enable_conntrack_deletion;  // the default
    ASSERT_TRUE(settings.enable_conntrack_deletion);
    settings.retry_base = 1000ms;
    Reconciler reconciler{settings, runner, clock};

    EXPECT_FALSE(await(ioc, reconciler.sync_once()));  // start()'s first sync
    EXPECT_FALSE(reconciler.stats().ever_in_sync);
    EXPECT_TRUE(runner.calls_of("conntrack").empty());

    asio::cancellation_signal stop;
    asio::co_spawn(ioc, reconciler.run(),
                   asio::bind_cancellation_slot(stop.slot(), asio::detached));
    ioc.restart();
    ioc.poll();
    // Retried at once (no clock advance), then a backoff wait, never the 60 s interval.
    EXPECT_EQ(reconciler.stats().syncs, 2U);
    EXPECT_EQ(reconciler.stats().consecutive_errors, 2U);
    ASSERT_EQ(clock.waiters(), 1U);
    const auto delay = clock.next_deadline() - clock.steady_now();
    EXPECT_GE(delay, 500ms);
    EXPECT_LE(delay, 2000ms);

    fake.save_failure.reset();
    clock.advance(delay);
    ioc.poll();
    const auto st = reconciler.stats();
    EXPECT_TRUE(st.ever_in_sync);
    EXPECT_TRUE(st.in_sync);
    EXPECT_EQ(st.consecutive_errors, 0U);
    EXPECT_TRUE(st.conntrack_done);
    EXPECT_EQ(st.conntrack_flows_deleted, 2U);
    EXPECT_EQ(runner.calls_of("conntrack").size(), 1U);
    EXPECT_EQ(clock.next_deadline() - clock.steady_now(), settings.update_interval);

    stop.emit(asio::cancellation_type::terminal);
    ioc.poll();
    EXPECT_EQ(clock.waiters(), 0U);
}

TEST(Reconciler, AutoDetectsTheBackendOnce) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner, "iptables-legacy"};
    fake.table = kInSync;
    runner.push("iptables-nft-save", RecordingCommandRunner::ok("*mangle\nCOMMIT\n"));
    runner.push("ip6tables-nft-save", RecordingCommandRunner::ok(""));
    runner.push("iptables-legacy-save",
                RecordingCommandRunner::ok("*mangle\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n"));
    Settings settings = nft_settings();
    settings.backend = BackendChoice::automatic;
    Reconciler reconciler{settings, runner, clock};
    EXPECT_FALSE(reconciler.stats().backend.has_value());

    ASSERT_TRUE(await(ioc, reconciler.sync_once()));
    ASSERT_TRUE(await(ioc, reconciler.sync_once()));
    EXPECT_EQ(
        runner.command_lines(),
        (std::vector<std::string>{"iptables-nft-save -t mangle", "ip6tables-nft-save -t mangle",
                                  "iptables-legacy-save", "iptables-legacy-save -t nat",
                                  "iptables-legacy-save -t nat"}));
    EXPECT_EQ(reconciler.stats().backend, Backend::legacy);
    EXPECT_EQ(reconciler.stats().backend_reason, "kubelet chains in iptables-legacy-save");
}

TEST(Reconciler, ConntrackDeletionRunsOnceAfterTheFirstGoodSync) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    runner.push("conntrack", RecordingCommandRunner::exit_with(
                                 1,
                                 "conntrack v1.4.7 (conntrack-tools): Operation failed: "
                                 "Operation not permitted\n"));
    runner.push("conntrack",
                RecordingCommandRunner::exit_with(
                    1, "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n"));
    Settings settings = nft_settings();
    settings.enable_conntrack_deletion = true;
    Reconciler reconciler{settings, runner, clock};

    // The failure is counted but does not fail the sync; the next sync tries again.
    ASSERT_TRUE(await(ioc, reconciler.sync_once()));
    EXPECT_EQ(reconciler.stats().errors, 1U);
    EXPECT_FALSE(reconciler.stats().conntrack_done);
    EXPECT_TRUE(reconciler.stats().in_sync);
    EXPECT_EQ(reconciler.stats().last_error,
              "conntrack -D: exit status 1: conntrack v1.4.7 (conntrack-tools): Operation failed: "
              "Operation not permitted");

    ASSERT_TRUE(await(ioc, reconciler.sync_once()));
    EXPECT_TRUE(reconciler.stats().conntrack_done);
    EXPECT_EQ(reconciler.stats().conntrack_flows_deleted, 0U);
    ASSERT_TRUE(await(ioc, reconciler.sync_once()));

    const auto conntrack = runner.calls_of("conntrack");
    ASSERT_EQ(conntrack.size(), 2U);
    EXPECT_EQ(conntrack[0].argv,
              (std::vector<std::string>{"conntrack", "-D", "-d", "169.254.169.254", "-p", "tcp",
                                        "--dport", "80", "--reply-src", "169.254.169.254"}));
}

TEST(Reconciler, NoConntrackWithoutTheFlagOrBeforeASuccess) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    fake.save_failure = RecordingCommandRunner::exit_with(1);
    Settings settings = nft_settings();
    settings.enable_conntrack_deletion = true;
    Reconciler failing{settings, runner, clock};
    EXPECT_FALSE(await(ioc, failing.sync_once()));
    fake.save_failure.reset();
    Reconciler disabled{nft_settings(), runner, clock};
    EXPECT_TRUE(await(ioc, disabled.sync_once()));
    EXPECT_TRUE(runner.calls_of("conntrack").empty());
}

TEST(Reconciler, CleanupRemovesJumpsAndChainThenVerifies) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    fake.table = kInSync;
    Reconciler reconciler{nft_settings(), runner, clock};
    ASSERT_TRUE(await(ioc, reconciler.sync_once()));
    ASSERT_TRUE(reconciler.stats().in_sync);

    ASSERT_TRUE(await(ioc, reconciler.cleanup()));
    EXPECT_EQ(fake.restores,
              (std::vector<std::string>{"*nat\n:aad-metadata - [0:0]\n-D PREROUTING -j "
                                        "aad-metadata\n-X aad-metadata\nCOMMIT\n"}));
    EXPECT_FALSE(reconciler.stats().in_sync);

    // Nothing left: no restore at all.
    runner.clear_calls();
    ASSERT_TRUE(await(ioc, reconciler.cleanup()));
    EXPECT_EQ(runner.command_lines(), (std::vector<std::string>{"iptables-nft-save -t nat"}));
}

TEST(Reconciler, CleanupFailureIsReported) {
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    fake.table = kInSync;
    fake.restore_fixes = false;
    Reconciler reconciler{nft_settings(), runner, clock};
    EXPECT_EQ(await(ioc, reconciler.cleanup()).error(), make_error_code(Errc::io_error));
    EXPECT_EQ(reconciler.stats().last_error, "cleanup: chain or jumps still present after restore");
    EXPECT_EQ(reconciler.stats().errors, 1U);
}

class FakeProcRoot {
public:
    FakeProcRoot() {
        root_ = fs::temp_directory_path() / ("nmid-ipt-rec-" + std::to_string(::getpid()));
        for (const char* name : {"all", "default", "eth0"}) {
            fs::create_directories(root_ / "sys/net/ipv4/conf" / name);
            std::ofstream{root_ / "sys/net/ipv4/conf" / name / "route_localnet"} << "0\n";
        }
    }
    ~FakeProcRoot() { fs::remove_all(root_); }
    FakeProcRoot(const FakeProcRoot&) = delete;
    FakeProcRoot& operator=(const FakeProcRoot&) = delete;
    [[nodiscard]] std::string root() const { return root_.string(); }
    [[nodiscard]] std::string all() const {
        std::ifstream in{root_ / "sys/net/ipv4/conf/all/route_localnet"};
        return {std::istreambuf_iterator<char>{in}, {}};
    }

private:
    fs::path root_;
};

TEST(Reconciler, RouteLocalnetWarningWhenOff) {
    const FakeProcRoot proc;
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    Settings settings = nft_settings();
    settings.proc_root = proc.root();
    Reconciler reconciler{settings, runner, clock};
    ASSERT_TRUE(await(ioc, reconciler.sync_once()));
    EXPECT_EQ(reconciler.stats().route_localnet_warning.rfind("route_localnet is off (", 0), 0U)
        << reconciler.stats().route_localnet_warning;
    EXPECT_EQ(proc.all(), "0\n");  // only reported, never written without the flag

    Settings node_ip = settings;
    node_ip.target_ip = "10.240.0.4";
    Reconciler other{node_ip, runner, clock};
    (void)await(ioc, other.sync_once());
    EXPECT_EQ(other.stats().route_localnet_warning, "");

    // Checked at every sync, even one whose iptables read fails.
    fake.save_failure = RecordingCommandRunner::exit_with(1);
    Reconciler failing{settings, runner, clock};
    EXPECT_FALSE(await(ioc, failing.sync_once()));
    EXPECT_NE(failing.stats().route_localnet_warning, "");
}

TEST(Reconciler, SetRouteLocalnetTurnsItOn) {
    const FakeProcRoot proc;
    asio::io_context ioc;
    ManualClock clock;
    RecordingCommandRunner runner;
    FakeNat fake{runner};
    Settings settings = nft_settings();
    settings.proc_root = proc.root();
    settings.set_route_localnet = true;
    Reconciler reconciler{settings, runner, clock};
    ASSERT_TRUE(await(ioc, reconciler.sync_once()));
    EXPECT_EQ(proc.all(), "1\n");
    EXPECT_EQ(reconciler.stats().route_localnet_warning, "");
}

}  // namespace
}  // namespace nmid::iptables
