#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"

namespace nmid::kube {

/// The bearer token sent to the API server and the kubelet. A seam (file and time).
class TokenProvider {
public:
    virtual ~TokenProvider() = default;

    /// The token to send now. Thread-safe; may read a small local file, never the network.
    /// Errors: Errc::io_error when no token could ever be read.
    [[nodiscard]] virtual Result<std::string> token() = 0;

    /// The server answered 401: the next token() reads its source again (a rotated token
    /// is picked up at once instead of after the re-read interval). Thread-safe.
    virtual void invalidate() = 0;
};

/// A fixed token (kubeconfig `token`).
class StaticTokenProvider final : public TokenProvider {
public:
    explicit StaticTokenProvider(std::string token) : token_{std::move(token)} {}
    [[nodiscard]] Result<std::string> token() override { return token_; }
    void invalidate() override {}

private:
    const std::string token_;
};

/// A token file re-read at most every `reread_interval` (client-go reads it every minute), so
/// bound service-account tokens the kubelet rotates are picked up. The file is read on the
/// first token() call (and on every call until it succeeds once); surrounding whitespace is
/// trimmed. When a later re-read fails (missing, empty), the last good token is kept and the
/// first call after the next interval tries again.
class FileTokenProvider final : public TokenProvider {
public:
    FileTokenProvider(std::string path, const Clock& clock, Seconds reread_interval = Seconds{60});

    [[nodiscard]] Result<std::string> token() override;
    void invalidate() override;

    [[nodiscard]] const std::string& path() const { return path_; }
    /// Times the file was read (successfully or not); for tests and metrics.
    [[nodiscard]] std::size_t reads() const;

private:
    const std::string path_;
    const Clock& clock_;
    const Seconds interval_;
    // Guards everything below: token() may run on several I/O threads.
    mutable std::mutex mutex_;
    std::string token_;
    bool have_token_ = false;
    bool stale_ = true;  ///< read on the next call
    SteadyTime next_read_{};
    std::size_t reads_ = 0;
};

/// Reads a token file once: the trimmed contents, or Errc::io_error (missing, unreadable,
/// empty after trimming). Blocking file read of at most 64 KiB.
[[nodiscard]] Result<std::string> read_token_file(const std::string& path);

}  // namespace nmid::kube
