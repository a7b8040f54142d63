#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nmid/config/config.hpp"

namespace nmid::app {

/// The composition root: builds every component from one validated Config, owns the
/// io_context and its threads, the signals, readiness and the shutdown order.
class Daemon {
public:
    explicit Daemon(config::Config config);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    /// Builds components, binds every listener and (unless --manage-iptables=false) installs
    /// the iptables rules before anything is read. On failure returns a one-line reason (the
    /// caller prints it and exits non-zero); nothing is left running.
    [[nodiscard]] std::string start();
    /// Serves until SIGINT/SIGTERM or stop(), then shuts down in order. Returns the exit code.
    int run();
    /// Thread-safe request to shut down (as SIGTERM does).
    void stop();

    /// Bound ports (useful when configured as 0). Valid after start().
    [[nodiscard]] std::uint16_t port() const;
    [[nodiscard]] std::uint16_t probe_port() const;
    [[nodiscard]] std::uint16_t metrics_port() const;
    /// The debug listener's port (0 when --debug-address is empty).
    [[nodiscard]] std::uint16_t debug_port() const;

    /// `nmid cleanup`: removes the iptables rules `config` describes and verifies they are
    /// gone. Returns the exit code (0: removed or nothing to remove; 1: failed, reason logged).
    static int cleanup(const config::Config& config);

private:
    struct Impl;
    config::Config config_;  ///< until start() builds the components from it
    std::unique_ptr<Impl> impl_;
};

}  // namespace nmid::app
