#include "nmid/crd/crd_file_source.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <cerrno>
#include <memory>
#include <system_error>
#include <utility>

#include "nmid/crd/crd_parse.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;

// A CRD file is a few kilobytes; anything this large is a mistake, not a cluster.
constexpr std::int64_t kMaxFileSize = std::int64_t{64} * 1024 * 1024;
// Filesystem timestamps are coarse (a jiffy on most Linux filesystems, seconds on some), so a
// write in the same tick as our read leaves (size, mtime) unchanged. A file modified this
// recently before we read it is read again at the next poll (git's "racy clean" problem).
constexpr std::chrono::seconds kRacyWindow{2};
constexpr Millis kMinPollInterval{1};

std::string errno_text(int err) {
    return std::system_category().message(err);
}

bool is_cancelled(const asio::cancellation_state& state) {
    return state.cancelled() != asio::cancellation_type::none;
}

}  // namespace

CrdFileSource::CrdFileSource(Clock& clock, CrdSettings settings)
    : clock_(clock), settings_(std::move(settings)) {}

CrdFileStats CrdFileSource::stats() const {
    const std::lock_guard lock{stats_mutex_};
    return stats_;
}

asio::awaitable<void> CrdFileSource::run(Publish publish) {
    // Cancellation is a normal way out: observe it as a value, never as an exception.
    co_await asio::this_coro::throw_if_cancelled(false);
    const asio::cancellation_state cancellation = co_await asio::this_coro::cancellation_state;
    const Millis interval = std::max(settings_.poll_interval, kMinPollInterval);
    for (;;) {
        poll(publish);
        if (is_cancelled(cancellation)) {
            co_return;
        }
        co_await clock_.wait_until(clock_.steady_now() + interval);
        if (is_cancelled(cancellation)) {
            co_return;
        }
    }
}

void CrdFileSource::poll(const Publish& publish) {
    FileStamp stamp;
    struct stat st {};
    const bool exists = ::stat(settings_.crds_file.c_str(), &st) == 0;
    const int stat_errno = errno;
    if (exists) {
        stamp = {.device = static_cast<std::uint64_t>(st.st_dev),
                 .inode = static_cast<std::uint64_t>(st.st_ino),
                 .size = static_cast<std::int64_t>(st.st_size),
                 .mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                             st.st_mtim.tv_nsec};
    }
    const bool changed = !have_stamp_ || stamp != stamp_;
    if (loaded_ && !changed && !recheck_) {
        return;
    }
    have_stamp_ = true;
    stamp_ = stamp;
    recheck_ = false;
    if (!exists) {
        fail("cannot stat: " + errno_text(stat_errno));
        return;
    }
    if (stamp.size > kMaxFileSize) {
        fail("file is larger than " + std::to_string(kMaxFileSize) + " bytes");
        return;
    }
    // The injected wall clock: with a ManualClock every read counts as racy, which costs only
    // a re-read per poll.
    const auto read_at =
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.wall_now().time_since_epoch())
            .count();
    recheck_ = stamp.mtime_ns >= read_at - std::chrono::nanoseconds{kRacyWindow}.count();
    load(publish);
}

void CrdFileSource::load(const Publish& publish) {
    const int fd = ::open(settings_.crds_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail("cannot open: " + errno_text(errno));
        return;
    }
    std::string content;
    char buffer[64 * 1024];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            fail("cannot read: " + errno_text(err));
            return;
        }
        if (n == 0) {
            break;
        }
        content.append(buffer, static_cast<std::size_t>(n));
        if (static_cast<std::int64_t>(content.size()) > kMaxFileSize) {
            ::close(fd);
            fail("file is larger than " + std::to_string(kMaxFileSize) + " bytes");
            return;
        }
    }
    ::close(fd);

    if (loaded_ && content == content_) {
        // Touched, rewritten with the same bytes, or fixed back to what is published.
        last_error_.clear();
        return;
    }
    std::string detail;
    std::size_t skipped = 0;
    auto parsed = parse_crds(content, &detail, &skipped);
    if (!parsed) {
        fail(detail);
        return;
    }
    auto snapshot = std::make_shared<const CrdSnapshot>(std::move(*parsed));
    content_ = std::move(content);
    loaded_ = true;
    last_error_.clear();
    {
        const std::lock_guard lock{stats_mutex_};
        ++stats_.reloads;
        stats_.identities = snapshot->identities.size();
        stats_.bindings = snapshot->bindings.size();
        stats_.exceptions = snapshot->exceptions.size();
        stats_.assigned = snapshot->assigned.size();
    }
    spdlog::info(
        "crds file {}: loaded {} identities, {} bindings, {} exceptions, {} assigned "
        "identities ({} objects of other kinds skipped)",
        settings_.crds_file, snapshot->identities.size(), snapshot->bindings.size(),
        snapshot->exceptions.size(), snapshot->assigned.size(), skipped);
    publish(std::move(snapshot));
}

void CrdFileSource::fail(std::string error) {
    // A missing or broken file is polled every interval: count and say so once per version
    // of the file, not every second.
    if (error == last_error_ && stamp_ == failed_stamp_) {
        return;
    }
    {
        const std::lock_guard lock{stats_mutex_};
        ++stats_.failures;
    }
    if (loaded_) {
        spdlog::warn("crds file {}: {}; keeping the previous snapshot", settings_.crds_file, error);
    } else {
        spdlog::warn("crds file {}: {}; no CRD snapshot yet, retrying every {} ms",
                     settings_.crds_file, error, settings_.poll_interval.count());
    }
    last_error_ = std::move(error);
    failed_stamp_ = stamp_;
}

}  // namespace nmid
