// Runs only harmless programs (/bin/cat, /bin/sh, /bin/sleep); never iptables.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include "nmid/iptables/command_runner.hpp"

namespace nmid::iptables {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

CommandResult run(std::vector<std::string> argv, std::string input = {},
                  std::chrono::milliseconds timeout = 10s, std::size_t max_output = 1 << 20) {
    Command command;
    command.argv = std::move(argv);
    command.stdin_data = std::move(input);
    command.timeout = timeout;
    return ProcessCommandRunner::run_blocking(command, max_output);
}

TEST(ProcessCommandRunner, CatEchoesStdin) {
    const CommandResult r = run({"/bin/cat"}, "*nat\nCOMMIT\n");
    EXPECT_EQ(r.status, CommandStatus::exited);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "*nat\nCOMMIT\n");
    EXPECT_EQ(r.err, "");
    EXPECT_TRUE(r.succeeded());
    EXPECT_EQ(r.describe(), "exit status 0");
}

TEST(ProcessCommandRunner, LargeStdinAndStdoutDoNotDeadlock) {
    // far beyond a pipe buffer in both directions
    std::string big(std::size_t{3} * 1024 * 1024, 'x');
    for (std::size_t i = 0; i < big.size(); i += 97) {
        big[i] = '\n';
    }
    const CommandResult r = run({"/bin/cat"}, big, 30s, big.size());
    EXPECT_TRUE(r.succeeded()) << r.describe();
    EXPECT_EQ(r.out.size(), big.size());
    EXPECT_EQ(r.out, big);
}

TEST(ProcessCommandRunner, ExitStatusAndStderr) {
    const CommandResult r = run({"/bin/sh", "-c", "echo out; echo 'line 3 failed' >&2; exit 3"});
    EXPECT_EQ(r.status, CommandStatus::exited);
    EXPECT_EQ(r.code, 3);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "line 3 failed\n");
    EXPECT_FALSE(r.succeeded());
    EXPECT_EQ(r.describe(), "exit status 3: line 3 failed");
}

TEST(ProcessCommandRunner, NoShellInterpretsArguments) {
    const CommandResult r =
        run({"/bin/sh", "-c", "printf '%s|' \"$@\"", "sh", "a b", "$HOME", ";"});
    EXPECT_EQ(r.out, "a b|$HOME|;|");
}

TEST(ProcessCommandRunner, ChildIgnoringStdinDoesNotBreakUs) {
    // The child exits without reading: our writes hit EPIPE, which must not kill the test.
    const CommandResult r = run({"/bin/sh", "-c", "exit 0"}, std::string(1 << 20, 'y'));
    EXPECT_TRUE(r.succeeded()) << r.describe();
    sigset_t pending;
    sigemptyset(&pending);
    ASSERT_EQ(sigpending(&pending), 0);
    EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
}

TEST(ProcessCommandRunner, KilledAtTheTimeout) {
    const auto start = std::chrono::steady_clock::now();
    const CommandResult r = run({"/bin/sleep", "30"}, {}, 200ms);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.status, CommandStatus::timed_out);
    EXPECT_EQ(r.code, SIGKILL);
    EXPECT_EQ(r.describe(), "timed out");
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 10s);
}

TEST(ProcessCommandRunner, SignalledChild) {
    const CommandResult r = run({"/bin/sh", "-c", "kill -TERM $$"});
    EXPECT_EQ(r.status, CommandStatus::signalled);
    EXPECT_EQ(r.code, SIGTERM);
    EXPECT_EQ(r.describe(), "killed by signal 15");
}

TEST(ProcessCommandRunner, MissingProgramFailsToStart) {
    const CommandResult in_path = run({"nmid-no-such-program-7f3a"});
    EXPECT_EQ(in_path.status, CommandStatus::failed_to_start);
    EXPECT_EQ(in_path.code, ENOENT);
    EXPECT_EQ(in_path.describe(), "failed to start: No such file or directory");
    EXPECT_EQ(run({"/nonexistent/iptables-nft-save"}).status, CommandStatus::failed_to_start);
    EXPECT_EQ(run({}).code, EINVAL);
}

TEST(ProcessCommandRunner, OutputBeyondTheLimitIsCutAndFlagged) {
    const CommandResult r = run({"/bin/cat"}, std::string(100'000, 'z'), 10s, 1000);
    EXPECT_EQ(r.status, CommandStatus::exited);
    EXPECT_EQ(r.out.size(), 1000U);
    EXPECT_TRUE(r.truncated);
    EXPECT_FALSE(r.succeeded());
}

TEST(ProcessCommandRunner, ChildInheritsNoExtraDescriptors) {
    const int fd = ::open("/dev/null", O_RDONLY);  // not close-on-exec on purpose
    ASSERT_GE(fd, 3);
    const CommandResult r =
        run({"/bin/sh", "-c", "[ -e /proc/self/fd/" + std::to_string(fd) + " ] && echo leaked"});
    ::close(fd);
    EXPECT_EQ(r.out, "");
}

TEST(ProcessCommandRunner, RunDoesNotBlockTheIoThread) {
    // The child waits on a FIFO that only a handler on the same io_context opens. If run()
    // blocked the I/O thread, that handler could never run and the child would time out.
    const auto dir =
        std::filesystem::temp_directory_path() / ("nmid-ipt-fifo-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string fifo = (dir / "gate").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);

    asio::io_context ioc;
    ProcessCommandRunner runner;
    std::optional<CommandResult> result;
    std::thread::id resumed_on;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            Command command;
            command.argv = {"/bin/cat", fifo};
            command.timeout = 10s;
            result = co_await runner.run(std::move(command));
            resumed_on = std::this_thread::get_id();
        },
        asio::detached);
    asio::post(ioc, [&] {
        const int w = ::open(fifo.c_str(), O_WRONLY);  // returns once cat opened its end
        ASSERT_GE(w, 0);
        ASSERT_EQ(::write(w, "ok", 2), 2);
        ::close(w);
    });
    ioc.run();
    std::filesystem::remove_all(dir);
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->succeeded()) << result->describe();
    EXPECT_EQ(result->out, "ok");
    EXPECT_EQ(resumed_on, std::this_thread::get_id());  // resumed on the caller's executor
}

TEST(ProcessCommandRunner, IoContextWaitsForTheResult) {
    // ioc.run() must not return while a command is in flight (outstanding work tracked).
    asio::io_context ioc;
    ProcessCommandRunner runner;
    std::optional<CommandResult> result;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            Command command;
            command.argv = {"/bin/sh", "-c", "read x; echo got $x"};
            command.stdin_data = "it\n";
            result = co_await runner.run(std::move(command));
        },
        asio::detached);
    ioc.run();
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->out, "got it\n");
}

}  // namespace
}  // namespace nmid::iptables
