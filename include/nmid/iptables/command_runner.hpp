#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace nmid::iptables {

/// One program to run: no shell, argv[0] is the program (a bare name is looked up in PATH).
struct Command {
    std::vector<std::string> argv{};
    std::string stdin_data{};  ///< written to the child's stdin, which is then closed
    /// The child is killed (SIGKILL, by PID) when it runs longer than this. A duration, not
    /// a time point: the runner measures it on its own monotonic clock, so a test clock
    /// never decides when a real process dies.
    std::chrono::milliseconds timeout{30'000};
};

enum class CommandStatus {
    exited,           ///< ran to completion; `code` is the exit status
    signalled,        ///< killed by a signal it did not get from us; `code` is the signal
    timed_out,        ///< killed by us at the timeout
    failed_to_start,  ///< could not be started; `code` is the errno (ENOENT: not installed)
};

struct CommandResult {
    CommandStatus status = CommandStatus::exited;
    int code = 0;
    std::string out{};
    std::string err{};
    bool truncated = false;  ///< out or err exceeded the runner's limit and was cut

    [[nodiscard]] bool succeeded() const {
        return status == CommandStatus::exited && code == 0 && !truncated;
    }
    /// "exit status 2", "killed by signal 9", "timed out", "failed to start: <strerror>",
    /// then ": <first line of stderr>" when there is one. For logs and /readyz.
    [[nodiscard]] std::string describe() const;
};

/// Runs external programs (iptables-save/-restore, conntrack). The process seam of the
/// iptables module; tests use tests/support/recording_command_runner.hpp.
class CommandRunner {
public:
    virtual ~CommandRunner() = default;

    /// Runs `command` to completion or to its timeout.
    /// Executor: the caller's; the awaiting coroutine resumes on it. The I/O thread never
    /// blocks on the child. Cancellation: not observed; the timeout bounds every run.
    /// Errors: none as such; every outcome is a CommandResult status. Never throws.
    virtual boost::asio::awaitable<CommandResult> run(Command command) = 0;
};

/// Runs each command with posix_spawnp on a worker thread of its own (one command at a
/// time; iptables serialises on the xtables lock anyway): stdin written, stdout and stderr
/// captured up to `max_output` bytes each, the child killed by PID at its timeout and always
/// reaped. The child gets default signal dispositions, an empty signal mask and no other
/// inherited descriptors (glibc closefrom action).
class ProcessCommandRunner final : public CommandRunner {
public:
    static constexpr std::size_t kDefaultMaxOutput = std::size_t{64} * 1024 * 1024;

    explicit ProcessCommandRunner(std::size_t max_output = kDefaultMaxOutput);
    /// Waits for a running command to end (bounded by its timeout).
    ~ProcessCommandRunner() override;
    ProcessCommandRunner(const ProcessCommandRunner&) = delete;
    ProcessCommandRunner& operator=(const ProcessCommandRunner&) = delete;

    boost::asio::awaitable<CommandResult> run(Command command) override;

    /// The blocking part, on the calling thread (the worker, and tests of the mechanics).
    [[nodiscard]] static CommandResult run_blocking(const Command& command, std::size_t max_output);

private:
    struct Worker;
    std::size_t max_output_;
    std::unique_ptr<Worker> worker_;
};

}  // namespace nmid::iptables
