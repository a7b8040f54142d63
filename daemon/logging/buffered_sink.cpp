#include "buffered_sink.hpp"

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace nmid::logging::detail {

BufferedSink::BufferedSink(Writer writer) : writer_{std::move(writer)} {
    buffer_.reserve(2 * kFlushThreshold);
}

BufferedSink::~BufferedSink() {
    std::lock_guard lock{mutex_};
    flush_();
}

void BufferedSink::sink_it_(const spdlog::details::log_msg& msg) {
    formatter_->format(msg, buffer_);
    if (buffer_.size() >= kFlushThreshold || msg.level >= spdlog::level::warn) {
        flush_();
    }
}

void BufferedSink::flush_() {
    if (buffer_.size() == 0) {
        return;
    }
    writer_(std::string_view{buffer_.data(), buffer_.size()});
    buffer_.clear();
}

void write_stdout(std::string_view data) {
    while (!data.empty()) {
        const ssize_t written = ::write(STDOUT_FILENO, data.data(), data.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        data.remove_prefix(static_cast<std::size_t>(written));
    }
}

}  // namespace nmid::logging::detail
