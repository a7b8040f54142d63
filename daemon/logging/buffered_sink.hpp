#pragma once

// A sink that batches formatted lines in memory so a request's audit line costs a memcpy, not
// a write(2). With a flusher thread (the daemon's), the thread writes what accumulated every
// flush interval and as soon as 128 KiB accumulate, so the threads that log (the I/O threads)
// never wait for stdout; without one (tests), the logging thread writes at 32 KiB. Either way
// warn and above are written at once by the thread that logs them, and flush() writes
// everything before it returns.

#include <spdlog/formatter.h>
#include <spdlog/sinks/sink.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "format.hpp"

namespace nmid::logging::detail {

class BufferedSink final : public spdlog::sinks::sink {
public:
    /// Receives whole lines, in order; called by one thread at a time.
    using Writer = std::function<void(std::string_view)>;
    static constexpr std::size_t kFlushThreshold = std::size_t{32} * 1024;
    /// With a flusher thread: it is woken early once this much accumulates (else it writes
    /// every flush interval). Larger than kFlushThreshold so that under load the I/O thread is
    /// not preempted by the flusher thousands of times a second.
    static constexpr std::size_t kHandOffThreshold = std::size_t{128} * 1024;
    /// With a flusher thread: past this many buffered bytes (stdout slower than the logging),
    /// a logging thread waits for the flusher's write and writes itself (backpressure, bounded
    /// memory) instead of handing off.
    static constexpr std::size_t kMaxBuffered = std::size_t{1024} * 1024;

    /// `flush_interval` > 0 starts the flusher thread (signals blocked in it); 0: none.
    BufferedSink(Writer writer, std::chrono::milliseconds flush_interval);
    /// Stops the flusher and writes what is left.
    ~BufferedSink() override;
    BufferedSink(const BufferedSink&) = delete;
    BufferedSink& operator=(const BufferedSink&) = delete;

    void log(const spdlog::details::log_msg& msg) override;
    /// Writes everything buffered (after the flusher's write in progress, if any).
    void flush() override;
    void set_pattern(const std::string& pattern) override;
    void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override;

    /// Appends one info-level line built by `fill(ByteBuffer& buffer, Timestamp& ts)` straight
    /// into the buffer, under the sink's lock (the audit line: no spdlog message, no copy).
    template <class Fill>
    void append_line(Fill&& fill) {
        std::unique_lock lock{mutex_};
        fill(buffer_, timestamp_);
        if (buffer_.size() >= threshold_) {
            on_threshold(lock);
        }
    }

    /// Whether a flusher thread runs (tests).
    [[nodiscard]] bool has_flusher() const { return flusher_.joinable(); }

private:
    void on_threshold(std::unique_lock<std::mutex>& lock);
    /// Writes buffer_ in this thread, after the flusher's write in progress (order kept).
    void write_now(std::unique_lock<std::mutex>& lock);
    void run_flusher();

    Writer writer_;
    std::chrono::milliseconds interval_;
    std::size_t threshold_;  // kHandOffThreshold with a flusher, else kFlushThreshold
    std::mutex mutex_;       // guards everything below
    std::unique_ptr<spdlog::formatter> formatter_;
    spdlog::memory_buf_t formatted_;  // one spdlog record, before it joins buffer_
    Timestamp timestamp_;             // append_line's
    ByteBuffer buffer_;               // lines not yet handed to the writer
    ByteBuffer writing_buffer_;       // the flusher's, written outside the lock
    bool writing_ = false;            // the flusher is writing writing_buffer_
    bool handed_off_ = false;         // the flusher was asked to write now
    bool stopping_ = false;
    std::condition_variable wake_;  // flusher: hand-off or stop
    std::condition_variable idle_;  // loggers: the flusher's write ended
    std::thread flusher_;
};

/// Writes everything to standard output, retrying on EINTR and partial writes; on any other
/// error the bytes are dropped (there is nowhere left to report it).
void write_stdout(std::string_view data);

}  // namespace nmid::logging::detail
