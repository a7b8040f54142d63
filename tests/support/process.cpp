#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace nmid::test {

ChildProcess::ChildProcess(const std::string& path, const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        ::dup2(fds[1], STDERR_FILENO);
        ::execv(path.c_str(), argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
}

ChildProcess::~ChildProcess() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

bool ChildProcess::read_some(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
        return false;
    }
    char buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) {
        return false;
    }
    output_.append(buf, static_cast<std::size_t>(n));
    return true;
}

std::optional<std::string> ChildProcess::wait_for_line(const std::string& needle,
                                                       std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (;;) {
            const auto eol = output_.find('\n', scanned_);
            if (eol == std::string::npos) {
                break;
            }
            std::string line = output_.substr(scanned_, eol - scanned_);
            scanned_ = eol + 1;
            if (line.find(needle) != std::string::npos) {
                return line;
            }
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !read_some(left)) {
            return std::nullopt;
        }
    }
}

bool ChildProcess::wait_for_text(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // Where the last search for the same needle stopped: a caller that asks again and again
    // (the harness's output pump) scans each byte once, not the whole output every time.
    std::size_t from = needle == last_needle_ ? last_from_ : 0;
    last_needle_ = needle;
    for (;;) {
        if (output_.find(needle, from) != std::string::npos) {
            last_needle_.clear();
            return true;
        }
        from = output_.size() >= needle.size() ? output_.size() - needle.size() + 1 : 0;
        last_from_ = from;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !read_some(left)) {
            return false;
        }
    }
}

int ChildProcess::signal_and_wait(int signo, std::chrono::milliseconds timeout) {
    if (pid_ <= 0) {
        return -1;
    }
    ::kill(pid_, signo);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return -1000;
        }
        // Drain output while waiting so the child never blocks on a full pipe.
        read_some(std::chrono::milliseconds{20});
    }
}

std::optional<int> port_after(const std::string& line, const std::string& marker) {
    auto at = line.find(marker);
    if (at == std::string::npos) {
        return std::nullopt;
    }
    at += marker.size();
    while (at < line.size() && line[at] == ' ') {
        ++at;
    }
    auto end = line.find_first_of(" ,)\n", at);
    const std::string hostport = line.substr(at, end == std::string::npos ? end : end - at);
    const auto colon = hostport.rfind(':');
    if (colon == std::string::npos) {
        return std::nullopt;
    }
    try {
        return std::stoi(hostport.substr(colon + 1));
    } catch (...) {
        return std::nullopt;
    }
}

namespace {

int number_after(const std::string& line, const std::string& marker) {
    const auto at = line.find(marker);
    return at == std::string::npos ? -1 : std::atoi(line.c_str() + at + marker.size());
}

}  // namespace

NmidPorts nmid_ports(const std::string& listening_line) {
    return NmidPorts{.token = port_after(listening_line, "listening on").value_or(-1),
                     .probe = number_after(listening_line, "probe port "),
                     .metrics = number_after(listening_line, "metrics port "),
                     .debug = number_after(listening_line, "debug port ")};
}

std::vector<std::string> local_nmid_args(int emulator_port) {
    return {
        "--operation-mode=managed", "--nmi-port=0",
        "--http-probe-port=0",      "--prometheus-port=0",
        "--metadata-ip=127.0.0.1",  "--metadata-port=" + std::to_string(emulator_port),
        "--manage-iptables=false",  "--debug-address=127.0.0.1:0",
    };
}

}  // namespace nmid::test
