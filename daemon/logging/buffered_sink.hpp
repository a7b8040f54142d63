#pragma once

// A sink that batches formatted lines in memory so a request's audit line costs a memcpy, not
// a write(2). Lines reach the writer when 32 KiB accumulate, at once for warn and above, and
// on flush() (app's 500 ms timer and exit).

#include <spdlog/sinks/base_sink.h>

#include <cstddef>
#include <functional>
#include <mutex>
#include <string_view>

namespace nmid::logging::detail {

class BufferedSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    /// Receives whole lines; called with the sink's mutex held.
    using Writer = std::function<void(std::string_view)>;
    static constexpr std::size_t kFlushThreshold = 32 * 1024;

    explicit BufferedSink(Writer writer);
    ~BufferedSink() override;
    BufferedSink(const BufferedSink&) = delete;
    BufferedSink& operator=(const BufferedSink&) = delete;

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;
    void flush_() override;

private:
    Writer writer_;
    spdlog::memory_buf_t buffer_;
};

/// Writes everything to standard output, retrying on EINTR and partial writes; on any other
/// error the bytes are dropped (there is nowhere left to report it).
void write_stdout(std::string_view data);

}  // namespace nmid::logging::detail
