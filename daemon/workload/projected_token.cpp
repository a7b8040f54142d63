// The I/O half of the projected token source: reading the kubelet's file.
#include "nmid/workload/projected_token.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cstdlib>
#include <memory>
#include <unordered_set>

namespace nmid::workload {
namespace {

constexpr std::size_t kMaxTokenFile = std::size_t{16} * 1024;

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

std::optional<std::string> real_path(const std::string& path) {
    std::unique_ptr<char, decltype(&std::free)> resolved{::realpath(path.c_str(), nullptr),
                                                         &std::free};
    if (!resolved) {
        return std::nullopt;
    }
    return std::string{resolved.get()};
}

}  // namespace

ProjectedTokenProvider::ProjectedTokenProvider(std::string kubelet_root, Clock& clock)
    : root_(std::move(kubelet_root)), clock_(clock) {}

boost::asio::awaitable<SaTokenResult> ProjectedTokenProvider::token(PodInfoPtr pod,
                                                                    SteadyTime /*deadline*/) {
    co_return read(*pod);
}

SaTokenResult ProjectedTokenProvider::read(const PodInfo& pod) {
    const auto fail = [&](Errc code, std::string why) {
        const std::lock_guard lock{mutex_};
        ++stats_.failures;
        return fetch_error(code, 0, std::move(why));
    };
    const std::string who = "pod " + pod.namespace_name + "/" + pod.name;
    auto path = projected_token_path(root_, pod);
    if (!path) {
        return fail(Errc::upstream_refused, path.error());
    }
    // The file is a symlink into the kubelet's `..data` directory: resolve it, then insist
    // the result is still inside the volume (the volume directory resolved the same way).
    const auto file = real_path(path->file);
    const auto dir = real_path(path->volume_dir);
    if (!file || !dir) {
        return fail(Errc::upstream_refused, who + ": no projected token file at " + path->file +
                                                " (is --kubelet-root-dir "
                                                "right, and the volume mounted?)");
    }
    if (!file->starts_with(*dir + "/")) {
        return fail(Errc::upstream_refused,
                    who + ": the projected token file resolves outside its volume");
    }
    Fd fd{::open(file->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
    struct stat st {};
    if (fd.fd < 0 || ::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return fail(Errc::upstream_refused, who + ": the projected token file cannot be read");
    }
    const std::int64_t mtime_ns =
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    const std::int64_t now = clock_.unix_seconds();
    {
        const std::lock_guard lock{mutex_};
        const auto it = held_.find(pod.uid);
        if (it != held_.end() && it->second.file == *file && it->second.dev == st.st_dev &&
            it->second.ino == st.st_ino &&
            it->second.size == static_cast<std::uint64_t>(st.st_size) &&
            it->second.mtime_ns == mtime_ns && now < renew_at(it->second.token)) {
            ++stats_.reused;
            return it->second.token;
        }
    }
    if (st.st_size <= 0 || static_cast<std::size_t>(st.st_size) > kMaxTokenFile) {
        return fail(Errc::upstream_bad_payload, who +
                                                    ": the projected token file is empty or "
                                                    "larger than 16 KiB");
    }
    std::string jwt(static_cast<std::size_t>(st.st_size), '\0');
    const ssize_t n = ::read(fd.fd, jwt.data(), jwt.size());
    if (n <= 0) {
        return fail(Errc::upstream_refused, who + ": the projected token file cannot be read");
    }
    jwt.resize(static_cast<std::size_t>(n));
    while (!jwt.empty() && (jwt.back() == '\n' || jwt.back() == '\r')) {
        jwt.pop_back();
    }
    const auto times = jwt_times(jwt);
    if (!times) {
        return fail(Errc::upstream_bad_payload, who + ": the projected token file is not a JWT");
    }
    if (times->expires_on <= now) {
        return fail(Errc::upstream_bad_payload, who + ": the projected token expired at " +
                                                    std::to_string(times->expires_on) +
                                                    " (Unix seconds); is the kubelet rotating it?");
    }
    ServiceAccountToken token;
    token.token = std::move(jwt);
    token.expires_on = times->expires_on;
    token.issued_at = times->issued_at != 0 ? times->issued_at : now;
    const std::lock_guard lock{mutex_};
    ++stats_.reads;
    held_[pod.uid] = Held{*file,
                          static_cast<std::uint64_t>(st.st_dev),
                          static_cast<std::uint64_t>(st.st_ino),
                          static_cast<std::uint64_t>(st.st_size),
                          mtime_ns,
                          token};
    return token;
}

void ProjectedTokenProvider::retain(const std::vector<std::string>& live_uids) {
    const std::unordered_set<std::string> live(live_uids.begin(), live_uids.end());
    const std::lock_guard lock{mutex_};
    std::erase_if(held_, [&](const auto& kv) { return !live.contains(kv.first); });
}

ProjectedTokenStats ProjectedTokenProvider::stats() const {
    const std::lock_guard lock{mutex_};
    return stats_;
}

}  // namespace nmid::workload
