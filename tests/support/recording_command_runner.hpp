#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nmid/iptables/command_runner.hpp"

namespace nmid::test {

/// Scripted CommandRunner: records every Command and answers from scripts, never starting a
/// process. A reply is chosen in this order: a queued reply for the program (argv[0]), the
/// program's responder, the catch-all responder, else "failed to start: ENOENT" (as if the
/// program were not installed). run() completes without suspending.
/// Single-threaded: use from the executor the commands run on.
class RecordingCommandRunner final : public iptables::CommandRunner {
public:
    using Responder = std::function<iptables::CommandResult(const iptables::Command&)>;

    boost::asio::awaitable<iptables::CommandResult> run(iptables::Command command) override;

    /// The next call of `program` gets `reply` (replies queue up in order).
    void push(const std::string& program, iptables::CommandResult reply);
    /// Every call of `program` without a queued reply is answered by `responder`.
    void on(const std::string& program, Responder responder);
    /// Calls of any other program.
    void on_any(Responder responder) { any_ = std::move(responder); }

    /// Every command run so far, in order.
    [[nodiscard]] const std::vector<iptables::Command>& calls() const { return calls_; }
    /// argv of every call joined by spaces ("iptables-nft-save -t nat"), for compact checks.
    [[nodiscard]] std::vector<std::string> command_lines() const;
    /// Calls whose argv[0] is `program`.
    [[nodiscard]] std::vector<iptables::Command> calls_of(const std::string& program) const;
    void clear_calls() { calls_.clear(); }

    /// Shorthands for replies.
    [[nodiscard]] static iptables::CommandResult ok(std::string out = {});
    [[nodiscard]] static iptables::CommandResult exit_with(int code, std::string err = {},
                                                           std::string out = {});

private:
    std::vector<iptables::Command> calls_;
    std::map<std::string, std::deque<iptables::CommandResult>> queued_;
    std::map<std::string, Responder> responders_;
    Responder any_;
};

}  // namespace nmid::test
