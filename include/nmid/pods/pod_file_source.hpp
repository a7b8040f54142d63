#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nmid/pods/pod_source.hpp"

namespace nmid {

/// `--pods-file`: a PodList JSON file (kubelet `/pods` or `kubectl get pods -o json` output).
/// The file is re-read and re-parsed only when its identity (device, inode, size, mtime,
/// ctime) changes, so polling it every second costs one open and one fstat. Replacing the
/// file by rename (the ConfigMap volume and `mv` pattern) is detected through the inode.
class PodFileSource final : public PodSource {
public:
    explicit PodFileSource(std::string path);

    /// Returns the previous pointer when the file is unchanged (the index then skips its
    /// rebuild). Blocking local file I/O and parsing happen inline on the caller's executor;
    /// the file is capped at 64 MiB. `deadline` is not used (a local read is bounded by the
    /// cap). Not reentrant: the pod index never runs two reads at once.
    /// Errors: Errc::pod_source_failed (missing, unreadable, not a regular file, too large),
    /// Errc::parse_error (logged once per file version with the parser's detail).
    boost::asio::awaitable<Result<std::shared_ptr<const PodList>>> list(
        SteadyTime deadline) override;

private:
    struct FileId {
        std::uint64_t device = 0;
        std::uint64_t inode = 0;
        std::int64_t size = -1;
        std::int64_t mtime_ns = 0;
        std::int64_t ctime_ns = 0;
        friend bool operator==(const FileId&, const FileId&) = default;
    };

    Result<std::shared_ptr<const PodList>> read_now();

    std::string path_;
    FileId last_id_{};
    bool have_last_ = false;
    std::shared_ptr<const PodList> last_list_;  ///< null when the last version failed to parse
    std::string last_failure_;                  ///< last failure logged (no repeats)
};

}  // namespace nmid
