#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace nmid::test {

/// A child process started by a test, with stdout+stderr captured through a pipe.
/// The destructor kills it by PID (SIGKILL) and reaps it, so nothing outlives the test.
class ChildProcess {
public:
    ChildProcess(const std::string& path, const std::vector<std::string>& args);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    /// Reads output until a line contains `needle`; returns that line, or nullopt when the
    /// process exits or `timeout` passes first (a bound for a broken build, not a wait).
    std::optional<std::string> wait_for_line(const std::string& needle,
                                             std::chrono::milliseconds timeout);
    /// Reads output until `needle` appears anywhere in it (lines already seen included);
    /// false when the process exits or `timeout` passes first.
    bool wait_for_text(const std::string& needle, std::chrono::milliseconds timeout);
    /// Sends `signo` and waits for the exit; returns the exit status (or -signal).
    int signal_and_wait(int signo, std::chrono::milliseconds timeout);
    /// Everything read so far.
    [[nodiscard]] const std::string& output() const { return output_; }

private:
    bool read_some(std::chrono::milliseconds timeout);

    pid_t pid_ = -1;
    int fd_ = -1;
    std::string output_;
    std::size_t scanned_ = 0;
    std::string last_needle_;    ///< wait_for_text's last needle not found ...
    std::size_t last_from_ = 0;  ///< ... and where its search resumes
};

/// Port from a line such as "listening on 127.0.0.1:41235" (the text after the last ':' of
/// the first "host:port" token following `marker`).
std::optional<int> port_after(const std::string& line, const std::string& marker);

/// The ports nmid's "listening on HOST:PORT (probe port P, metrics port M), ..." line names;
/// -1 for any it does not.
struct NmidPorts {
    int token = -1;
    int probe = -1;
    int metrics = -1;
    int debug = -1;  ///< -1 also when the debug listener is off
};
[[nodiscard]] NmidPorts nmid_ports(const std::string& listening_line);

/// The flags every test nmid talking to a local IMDS emulator starts with: managed mode,
/// OS-chosen ports (the debug listener's too), the emulator on 127.0.0.1:`emulator_port` as IMDS, no iptables.
[[nodiscard]] std::vector<std::string> local_nmid_args(int emulator_port);

}  // namespace nmid::test
