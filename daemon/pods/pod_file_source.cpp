#include "nmid/pods/pod_file_source.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "nmid/pods/pod_list_json.hpp"

namespace nmid {
namespace {

constexpr std::int64_t kMaxFileSize = 64LL * 1024 * 1024;

// Closes the descriptor on every path out of read_now().
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    [[nodiscard]] int get() const { return fd_; }

private:
    int fd_;
};

std::int64_t to_ns(const struct timespec& ts) {
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

PodFileSource::PodFileSource(std::string path) : path_(std::move(path)) {}

boost::asio::awaitable<Result<std::shared_ptr<const PodList>>> PodFileSource::list(
    SteadyTime /*deadline*/) {
    co_return read_now();
}

Result<std::shared_ptr<const PodList>> PodFileSource::read_now() {
    // Logs each distinct failure once: polling a broken file every second must not flood.
    const auto failed = [this](Errc code,
                               std::string why) -> Result<std::shared_ptr<const PodList>> {
        if (why != last_failure_) {
            spdlog::warn("pods file {}: {}", path_, why);
            last_failure_ = std::move(why);
        }
        return code;
    };

    Fd fd{::open(path_.c_str(), O_RDONLY | O_CLOEXEC)};
    if (fd.get() < 0) {
        have_last_ = false;
        return failed(Errc::pod_source_failed, std::string{"open: "} + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        have_last_ = false;
        return failed(Errc::pod_source_failed, std::string{"fstat: "} + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        have_last_ = false;
        return failed(Errc::pod_source_failed, "not a regular file");
    }
    const FileId id{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                    static_cast<std::int64_t>(st.st_size), to_ns(st.st_mtim), to_ns(st.st_ctim)};
    if (have_last_ && id == last_id_) {
        if (last_list_) {
            return last_list_;
        }
        return Errc::parse_error;  // this version already failed to parse (and was logged)
    }
    if (id.size > kMaxFileSize) {
        have_last_ = false;
        return failed(Errc::pod_source_failed,
                      "file of " + std::to_string(id.size) + " bytes exceeds the 64 MiB cap");
    }

    std::string body;
    body.resize(static_cast<std::size_t>(id.size));
    std::size_t got = 0;
    while (got < body.size()) {
        const ssize_t n = ::read(fd.get(), body.data() + got, body.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            have_last_ = false;
            return failed(Errc::pod_source_failed, std::string{"read: "} + std::strerror(errno));
        }
        if (n == 0) {
            break;  // truncated while reading: parse what is there; the next poll sees the change
        }
        got += static_cast<std::size_t>(n);
    }
    body.resize(got);

    last_id_ = id;
    have_last_ = true;
    std::string detail;
    auto parsed = parse_pod_list(body, &detail);
    if (!parsed) {
        last_list_.reset();
        return failed(Errc::parse_error, "parse error: " + detail);
    }
    last_list_ = std::make_shared<const PodList>(std::move(*parsed));
    last_failure_.clear();
    return last_list_;
}

}  // namespace nmid
