// The only translation unit of the module that starts processes. No shell is involved:
// argv goes to posix_spawnp as it is.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <chrono>
#include <system_error>

#include "nmid/iptables/command_runner.hpp"

extern char** environ;

namespace nmid::iptables {

namespace asio = boost::asio;

struct ProcessCommandRunner::Worker {
    asio::thread_pool pool{1};
};

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = std::size_t{64} * 1024;
constexpr std::size_t kMaxErrorLine = 300;

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool open() const { return fd_ >= 0; }
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

private:
    int fd_ = -1;
};

struct Pipe {
    Fd read;
    Fd write;
};

bool make_pipe(Pipe& p) {
    std::array<int, 2> fds{};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
        return false;
    }
    p.read = Fd{fds[0]};
    p.write = Fd{fds[1]};
    return true;
}

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) {
        ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
}

CommandResult start_failure(int err) {
    return {.status = CommandStatus::failed_to_start, .code = err};
}

// Writing to a child that exited raises SIGPIPE on this thread; keep it blocked while we run
// and swallow the pending one, so neither the daemon nor a test thread dies of it.
class SigpipeBlock {
public:
    SigpipeBlock() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    ~SigpipeBlock() {
        sigset_t pending;
        sigemptyset(&pending);
        if (::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1 &&
            sigismember(&old_, SIGPIPE) == 0) {
            const timespec zero{};
            ::sigtimedwait(&pipe_, nullptr, &zero);
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;

private:
    sigset_t pipe_{};
    sigset_t old_{};
};

class SpawnSetup {
public:
    SpawnSetup() {
        ok_ = ::posix_spawn_file_actions_init(&actions_) == 0;
        attr_ok_ = ::posix_spawnattr_init(&attr_) == 0;
    }
    ~SpawnSetup() {
        if (ok_) {
            ::posix_spawn_file_actions_destroy(&actions_);
        }
        if (attr_ok_) {
            ::posix_spawnattr_destroy(&attr_);
        }
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;

    int prepare(int in, int out, int err) {
        if (!ok_ || !attr_ok_) {
            return ENOMEM;
        }
        int rc = ::posix_spawn_file_actions_adddup2(&actions_, in, STDIN_FILENO);
        rc = rc != 0 ? rc : ::posix_spawn_file_actions_adddup2(&actions_, out, STDOUT_FILENO);
        rc = rc != 0 ? rc : ::posix_spawn_file_actions_adddup2(&actions_, err, STDERR_FILENO);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
        // Sockets of the daemon are not all close-on-exec; iptables needs none of them.
        rc = rc != 0 ? rc : ::posix_spawn_file_actions_addclosefrom_np(&actions_, 3);
#endif
        sigset_t mask;
        sigemptyset(&mask);
        rc = rc != 0 ? rc : ::posix_spawnattr_setsigmask(&attr_, &mask);
        sigset_t defaults;
        sigemptyset(&defaults);
        for (const int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) {
            sigaddset(&defaults, s);
        }
        rc = rc != 0 ? rc : ::posix_spawnattr_setsigdefault(&attr_, &defaults);
        rc = rc != 0
                 ? rc
                 : ::posix_spawnattr_setflags(
                       &attr_, static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
        return rc;
    }
    [[nodiscard]] const posix_spawn_file_actions_t* actions() const {
        return &actions_;
    }
    [[nodiscard]] const posix_spawnattr_t* attr() const {
        return &attr_;
    }

private:
    posix_spawn_file_actions_t actions_{};
    posix_spawnattr_t attr_{};
    bool ok_ = false;
    bool attr_ok_ = false;
};

Fd open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    const long fd = ::syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        return Fd{static_cast<int>(fd)};
    }
#else
    (void)pid;
#endif
    return Fd{};
}

// Appends up to the limit, then drops the rest (still reading, so the child never blocks).
void append_capped(std::string& to, const char* data, std::size_t n, std::size_t limit,
                   bool& truncated) {
    const std::size_t room = to.size() < limit ? limit - to.size() : 0;
    to.append(data, std::min(n, room));
    truncated = truncated || n > room;
}

// Reads what is available; false at EOF or on a hard error (the fd is then done).
bool drain(Fd& fd, std::string& to, std::size_t limit, bool& truncated) {
    std::array<char, kReadChunk> buffer{};
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n > 0) {
            append_capped(to, buffer.data(), static_cast<std::size_t>(n), limit, truncated);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        fd.reset();
        return false;
    }
}

}  // namespace

std::string CommandResult::describe() const {
    std::string text;
    switch (status) {
        case CommandStatus::exited:
            text = "exit status " + std::to_string(code);
            break;
        case CommandStatus::signalled:
            text = "killed by signal " + std::to_string(code);
            break;
        case CommandStatus::timed_out:
            text = "timed out";
            break;
        case CommandStatus::failed_to_start:
            text = "failed to start: " + std::system_category().message(code);
            break;
    }
    if (truncated) {
        text += " (output truncated)";
    }
    std::string_view line{err};
    while (!line.empty() && (line.front() == '\n' || line.front() == ' ')) {
        line.remove_prefix(1);
    }
    line = line.substr(0, line.find('\n'));
    if (!line.empty()) {
        text += ": ";
        text += line.substr(0, kMaxErrorLine);
    }
    return text;
}

ProcessCommandRunner::ProcessCommandRunner(std::size_t max_output)
    : max_output_(max_output), worker_(std::make_unique<Worker>()) {}

ProcessCommandRunner::~ProcessCommandRunner() {
    worker_->pool.join();
}

asio::awaitable<CommandResult> ProcessCommandRunner::run(Command command) {
    const std::size_t max_output = max_output_;
    asio::thread_pool& pool = worker_->pool;
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(CommandResult)>(
        [&pool, max_output](auto handler, Command cmd) {
            // The caller's executor must not run out of work while the child runs.
            auto work = asio::prefer(asio::get_associated_executor(handler),
                                     asio::execution::outstanding_work.tracked);
            asio::post(pool, [handler = std::move(handler), work = std::move(work),
                              cmd = std::move(cmd), max_output]() mutable {
                CommandResult result = run_blocking(cmd, max_output);
                asio::dispatch(
                    work, [handler = std::move(handler), result = std::move(result)]() mutable {
                        std::move(handler)(std::move(result));
                    });
            });
        },
        asio::use_awaitable, std::move(command));
}

CommandResult ProcessCommandRunner::run_blocking(const Command& command, std::size_t max_output) {
    if (command.argv.empty() || command.argv.front().empty()) {
        return start_failure(EINVAL);
    }
    const auto deadline = SteadyClock::now() + command.timeout;
    const SigpipeBlock sigpipe_block;

    Pipe in;
    Pipe out;
    Pipe err;
    if (!make_pipe(in) || !make_pipe(out) || !make_pipe(err)) {
        return start_failure(errno);
    }
    SpawnSetup setup;
    if (const int rc = setup.prepare(in.read.get(), out.write.get(), err.write.get()); rc != 0) {
        return start_failure(rc);
    }
    std::vector<char*> argv;
    argv.reserve(command.argv.size() + 1);
    for (const std::string& a : command.argv) {
        argv.push_back(const_cast<char*>(a.c_str()));  // posix_spawn's signature, not written
    }
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int spawn_rc =
        ::posix_spawnp(&pid, argv.front(), setup.actions(), setup.attr(), argv.data(), environ);
    in.read.reset();
    out.write.reset();
    err.write.reset();
    if (spawn_rc != 0) {
        return start_failure(spawn_rc);
    }

    CommandResult result;
    Fd pidfd = open_pidfd(pid);
    set_nonblocking(in.write.get());
    set_nonblocking(out.read.get());
    set_nonblocking(err.read.get());
    std::size_t written = 0;
    if (command.stdin_data.empty()) {
        in.write.reset();
    }
    bool reaped = false;
    bool killed = false;
    int wait_status = 0;
    const auto try_reap = [&] {
        const pid_t r = ::waitpid(pid, &wait_status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            reaped = true;
        }
    };

    for (;;) {
        if (!reaped) {
            try_reap();
        }
        if (reaped) {
            in.write.reset();  // nobody reads it any more
        }
        if (reaped && !out.read.open() && !err.read.open()) {
            break;
        }
        const auto now = SteadyClock::now();
        if (now >= deadline) {
            if (!reaped) {
                ::kill(pid, SIGKILL);  // our own child, not yet reaped: the PID is still ours
                while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
                }
                reaped = true;
                killed = true;
            }
            break;  // a grandchild holding the pipes open is not waited for
        }
        std::array<pollfd, 4> fds{};
        nfds_t n = 0;
        int in_index = -1;
        if (in.write.open()) {
            in_index = static_cast<int>(n);
            fds[n++] = {in.write.get(), POLLOUT, 0};
        }
        if (out.read.open()) {
            fds[n++] = {out.read.get(), POLLIN, 0};
        }
        if (err.read.open()) {
            fds[n++] = {err.read.get(), POLLIN, 0};
        }
        if (!reaped && pidfd.open()) {
            fds[n++] = {pidfd.get(), POLLIN, 0};
        }
        auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
        if (!reaped && !pidfd.open()) {
            // Without a pidfd, an exit that leaves the pipes open is only seen by polling.
            wait_ms = std::min<long long>(wait_ms, 10);
        }
        const int ready = ::poll(fds.data(), n, static_cast<int>(std::max<long long>(wait_ms, 1)));
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (in_index >= 0 && fds[static_cast<std::size_t>(in_index)].revents != 0) {
            while (written < command.stdin_data.size()) {
                const ssize_t w = ::write(in.write.get(), command.stdin_data.data() + written,
                                          command.stdin_data.size() - written);
                if (w > 0) {
                    written += static_cast<std::size_t>(w);
                } else if (w < 0 && errno == EINTR) {
                    continue;
                } else {
                    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                        written = command.stdin_data.size();  // EPIPE: the child stopped reading
                    }
                    break;
                }
            }
            if (written >= command.stdin_data.size()) {
                in.write.reset();
            }
        }
        if (out.read.open()) {
            drain(out.read, result.out, max_output, result.truncated);
        }
        if (err.read.open()) {
            drain(err.read, result.err, max_output, result.truncated);
        }
    }

    if (!reaped) {
        // poll failed hard: do not leave a zombie or a runaway child behind.
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
        }
        killed = true;
    }
    if (killed) {
        result.status = CommandStatus::timed_out;
        result.code = SIGKILL;
    } else if (WIFEXITED(wait_status)) {
        result.status = CommandStatus::exited;
        result.code = WEXITSTATUS(wait_status);
    } else if (WIFSIGNALED(wait_status)) {
        result.status = CommandStatus::signalled;
        result.code = WTERMSIG(wait_status);
    }
    return result;
}

}  // namespace nmid::iptables
