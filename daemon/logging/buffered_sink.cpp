#include "buffered_sink.hpp"

#include <pthread.h>
#include <spdlog/pattern_formatter.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <utility>

namespace nmid::logging::detail {

BufferedSink::BufferedSink(Writer writer, std::chrono::milliseconds flush_interval)
    : writer_{std::move(writer)},
      interval_{flush_interval},
      threshold_{flush_interval > std::chrono::milliseconds::zero() ? kHandOffThreshold
                                                                    : kFlushThreshold},
      formatter_{std::make_unique<TextFormatter>()} {
    buffer_.reserve(2 * threshold_);
    if (interval_ <= std::chrono::milliseconds::zero()) {
        return;
    }
    writing_buffer_.reserve(2 * threshold_);
    // Signals stay with the threads that handle them (asio's signal_set in the daemon).
    sigset_t all{};
    sigset_t previous{};
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    flusher_ = std::thread{[this] { run_flusher(); }};
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

BufferedSink::~BufferedSink() {
    if (flusher_.joinable()) {
        {
            const std::lock_guard lock{mutex_};
            stopping_ = true;
        }
        wake_.notify_all();
        flusher_.join();
    }
    std::unique_lock lock{mutex_};
    write_now(lock);
}

void BufferedSink::log(const spdlog::details::log_msg& msg) {
    std::unique_lock lock{mutex_};
    formatted_.clear();
    formatter_->format(msg, formatted_);
    buffer_.append(formatted_.data(), formatted_.data() + formatted_.size());
    if (msg.level >= spdlog::level::warn) {
        write_now(lock);
    } else if (buffer_.size() >= threshold_) {
        on_threshold(lock);
    }
}

void BufferedSink::flush() {
    std::unique_lock lock{mutex_};
    write_now(lock);
}

void BufferedSink::set_pattern(const std::string& pattern) {
    set_formatter(std::make_unique<spdlog::pattern_formatter>(pattern));
}

void BufferedSink::set_formatter(std::unique_ptr<spdlog::formatter> formatter) {
    const std::lock_guard lock{mutex_};
    formatter_ = std::move(formatter);
}

void BufferedSink::on_threshold(std::unique_lock<std::mutex>& lock) {
    if (!flusher_.joinable() || buffer_.size() >= kMaxBuffered) {
        write_now(lock);
        return;
    }
    if (!handed_off_) {
        handed_off_ = true;
        wake_.notify_one();
    }
}

void BufferedSink::write_now(std::unique_lock<std::mutex>& lock) {
    idle_.wait(lock, [this] { return !writing_; });
    if (buffer_.empty()) {
        return;
    }
    writer_(buffer_.view());
    buffer_.clear();
}

void BufferedSink::run_flusher() {
    std::unique_lock lock{mutex_};
    for (;;) {
        wake_.wait_for(lock, interval_, [this] { return stopping_ || handed_off_; });
        if (stopping_) {
            return;
        }
        handed_off_ = false;
        if (buffer_.empty()) {
            continue;
        }
        // Swap rather than copy: loggers go on filling the other buffer meanwhile.
        buffer_.swap(writing_buffer_);
        writing_ = true;
        lock.unlock();
        writer_(writing_buffer_.view());
        writing_buffer_.clear();
        lock.lock();
        writing_ = false;
        idle_.notify_all();
    }
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
