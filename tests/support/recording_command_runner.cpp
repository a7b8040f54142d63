#include "support/recording_command_runner.hpp"

#include <cerrno>

namespace nmid::test {

boost::asio::awaitable<iptables::CommandResult> RecordingCommandRunner::run(
    iptables::Command command) {
    calls_.push_back(command);
    const std::string program = command.argv.empty() ? std::string{} : command.argv.front();
    if (auto q = queued_.find(program); q != queued_.end() && !q->second.empty()) {
        iptables::CommandResult reply = std::move(q->second.front());
        q->second.pop_front();
        co_return reply;
    }
    if (auto r = responders_.find(program); r != responders_.end()) {
        co_return r->second(command);
    }
    if (any_) {
        co_return any_(command);
    }
    co_return iptables::CommandResult{.status = iptables::CommandStatus::failed_to_start,
                                      .code = ENOENT};
}

void RecordingCommandRunner::push(const std::string& program, iptables::CommandResult reply) {
    queued_[program].push_back(std::move(reply));
}

void RecordingCommandRunner::on(const std::string& program, Responder responder) {
    responders_[program] = std::move(responder);
}

std::vector<std::string> RecordingCommandRunner::command_lines() const {
    std::vector<std::string> lines;
    for (const iptables::Command& c : calls_) {
        std::string line;
        for (const std::string& a : c.argv) {
            line += line.empty() ? "" : " ";
            line += a;
        }
        lines.push_back(std::move(line));
    }
    return lines;
}

std::vector<iptables::Command> RecordingCommandRunner::calls_of(const std::string& program) const {
    std::vector<iptables::Command> out;
    for (const iptables::Command& c : calls_) {
        if (!c.argv.empty() && c.argv.front() == program) {
            out.push_back(c);
        }
    }
    return out;
}

iptables::CommandResult RecordingCommandRunner::ok(std::string out) {
    return {.status = iptables::CommandStatus::exited, .code = 0, .out = std::move(out)};
}

iptables::CommandResult RecordingCommandRunner::exit_with(int code, std::string err,
                                                          std::string out) {
    return {.status = iptables::CommandStatus::exited,
            .code = code,
            .out = std::move(out),
            .err = std::move(err)};
}

}  // namespace nmid::test
