#pragma once

// Process logging: spdlog's default logger, configured once by `app`. Other modules log with
// spdlog::info(...) etc.; tokens never reach a formatter and client ids are redacted by the
// caller. Log fields are a public API (house rule R15).
//
// Text format, one line per record (klog-like level letter T D I W E C):
//   2026-11-23T10:00:00.123Z I listening on 127.0.0.1:2579
// Control characters in messages are escaped (\n, \r, \t, \xNN), as are bytes that are not
// valid UTF-8, so one record is always one line.
//
// JSON format, one object per line:
//   {"ts":"2026-11-23T10:00:00.123Z","level":"info","msg":"listening on 127.0.0.1:2579"}
// level is trace|debug|info|warn|error|critical; strings are JSON-escaped, invalid UTF-8 becomes
// U+FFFD.

#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <string_view>

#include "nmid/config/settings.hpp"

namespace nmid::logging {

/// Installs the default spdlog logger writing to stdout in `settings.format` at
/// `settings.level` (trace|debug|info|warn|warning|error|critical|off). Output is buffered and
/// written by a flusher thread that this starts: every 500 ms and as soon as 128 KiB
/// accumulate, so threads that log never wait for stdout (unless it falls 1 MiB behind).
/// Warn and above are written at once by the thread that logs them, and flush() writes
/// everything. Call once at start-up, before other threads log. Throws std::invalid_argument
/// for an unknown level.
void setup(const LogSettings& settings);

/// Same as setup() but writing to `out` instead of stdout (tests). With `flush_interval` 0
/// (the default) there is no flusher thread: the logging thread writes when 32 KiB
/// accumulate, so output is deterministic.
void setup_for_test(const LogSettings& settings, std::shared_ptr<std::ostringstream> out,
                    std::chrono::milliseconds flush_interval = std::chrono::milliseconds{0});
/// Same, with every write handed to `writer` (one call at a time, in order).
void setup_for_test(const LogSettings& settings, std::function<void(std::string_view)> writer,
                    std::chrono::milliseconds flush_interval = std::chrono::milliseconds{0});

/// Writes out everything buffered before it returns. Thread-safe; call it at exit.
void flush();

/// One request, as the audit line describes it. Every view is only read during audit().
struct AuditRecord {
    std::string_view method{};
    std::string_view path{};  ///< request target; anything from '?' on is dropped
    std::string_view remote{};
    int status = 0;
    std::chrono::nanoseconds took{0};
    std::string_view route{};
    std::string_view pod_namespace{};
    std::string_view pod_name{};
    std::string_view identity{};  ///< already redacted
    /// Token routes: "workload-identity" for a workload identity pod (issue 12), else "".
    std::string_view source{};
    std::string_view cache{};
    std::string_view error{};
};

/// Writes one audit line at info level. Thread-safe; formats straight into the log buffer.
///
/// Text (NMI's line, `reg.path` typo kept, then nmid's fields, each omitted when empty; a
/// value with a space, '"' or '=' is double-quoted with '"' and '\' escaped):
///   <ts> I status (200) took 537597 ns for req.method=GET reg.path=/metadata/identity/oauth2/token
///   req.remote=10.240.0.117 route=token pod=default/app identity=default/id cache=hit
///   error="upstream throttled"
/// JSON (optional fields omitted when empty):
///   {"ts":..,"level":"info","msg":"request","status":200,"took_ns":537597,"req.method":"GET",
///    "reg.path":"/metadata/identity/oauth2/token","req.remote":"10.240.0.117","route":"token",
///    "pod":"default/app","identity":"default/id","cache":"hit","error":".."}
void audit(const AuditRecord& record);

}  // namespace nmid::logging
