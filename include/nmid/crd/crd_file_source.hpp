#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/crd/crd_source.hpp"

namespace nmid {

/// Counters of a CrdFileSource (for /metrics and tests).
struct CrdFileStats {
    std::uint64_t reloads = 0;   ///< snapshots published
    std::uint64_t failures = 0;  ///< file versions that could not be read or parsed
    std::size_t identities = 0;  ///< sizes of the last published snapshot
    std::size_t bindings = 0;
    std::size_t exceptions = 0;
    std::size_t assigned = 0;
};

/// Standalone mode (`--crds-file`): the CRD snapshot comes from a YAML/JSON file
/// (`parse_crds`), re-read when it changes.
class CrdFileSource final : public CrdSource {
public:
    /// `clock` must outlive the source.
    CrdFileSource(Clock& clock, CrdSettings settings);

    /// Reads `settings.crds_file` at once and publishes it, then every `poll_interval` checks
    /// the file's (device, inode, size, mtime) through symlinks and publishes again when it
    /// changed and still parses. A missing or bad file logs one warning (per file version and
    /// error) and keeps the previous snapshot; before the first success it is retried every
    /// `poll_interval`, publishing nothing. Executor: the caller's (file reads are small and
    /// synchronous). Cancellation: returns at the next wait. Never throws.
    boost::asio::awaitable<void> run(Publish publish) override;

    /// Thread-safe.
    [[nodiscard]] CrdFileStats stats() const;

    /// Always 0: the file is re-read whenever it changes.
    [[nodiscard]] Millis snapshot_age() const override { return Millis{0}; }

private:
    struct FileStamp {
        std::uint64_t device = 0;
        std::uint64_t inode = 0;
        std::int64_t size = -1;
        std::int64_t mtime_ns = 0;
        friend bool operator==(const FileStamp&, const FileStamp&) = default;
    };

    void poll(const Publish& publish);
    void load(const Publish& publish);
    void fail(std::string error);

    Clock& clock_;
    CrdSettings settings_;
    // Owned by run(): touched only by the coroutine.
    bool loaded_ = false;
    bool have_stamp_ = false;
    bool recheck_ = false;  ///< the last read may have raced a write in the same mtime tick
    FileStamp stamp_;
    std::string content_;     ///< bytes of the last published snapshot
    std::string last_error_;  ///< last failure reported, with the file version it was about
    FileStamp failed_stamp_;
    // Guards stats_: written by run(), read by stats() from any thread.
    mutable std::mutex stats_mutex_;
    CrdFileStats stats_;
};

}  // namespace nmid
