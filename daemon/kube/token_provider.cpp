#include "nmid/kube/token_provider.hpp"

#include <fstream>
#include <iterator>

namespace nmid::kube {

namespace {

constexpr std::size_t kMaxTokenFile = std::size_t{64} * 1024;

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

}  // namespace

Result<std::string> read_token_file(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    if (!in) {
        return Errc::io_error;
    }
    std::string text;
    text.resize(kMaxTokenFile + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) {
        return Errc::io_error;
    }
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxTokenFile) {
        return Errc::io_error;
    }
    std::size_t begin = 0;
    std::size_t end = text.size();
    while (begin < end && is_space(text[begin])) {
        ++begin;
    }
    while (end > begin && is_space(text[end - 1])) {
        --end;
    }
    // A token with a line break inside would break the header it travels in.
    const std::string_view token{text.data() + begin, end - begin};
    if (token.empty() || token.find_first_of("\r\n") != std::string_view::npos ||
        token.find('\0') != std::string_view::npos) {
        return Errc::io_error;
    }
    return std::string{token};
}

FileTokenProvider::FileTokenProvider(std::string path, const Clock& clock, Seconds reread_interval)
    : path_{std::move(path)}, clock_{clock}, interval_{reread_interval} {}

Result<std::string> FileTokenProvider::token() {
    const std::lock_guard lock{mutex_};
    const SteadyTime now = clock_.steady_now();
    if (!have_token_ || stale_ || now >= next_read_) {
        // Small local file (a projected volume): read inline rather than off-thread.
        auto fresh = read_token_file(path_);
        ++reads_;
        stale_ = false;
        next_read_ = now + interval_;
        if (fresh) {
            token_ = std::move(*fresh);
            have_token_ = true;
        }
    }
    if (!have_token_) {
        return Errc::io_error;
    }
    return token_;
}

void FileTokenProvider::invalidate() {
    const std::lock_guard lock{mutex_};
    stale_ = true;
}

std::size_t FileTokenProvider::reads() const {
    const std::lock_guard lock{mutex_};
    return reads_;
}

}  // namespace nmid::kube
