#include "nmid/logging/logging.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "buffered_sink.hpp"
#include "format.hpp"

namespace nmid::logging {
namespace {

// Which payload audit() builds; must match the formatter installed by the last setup().
std::atomic<LogFormat> g_format{LogFormat::text};
// The logger installed by the last setup() and its sink: audit() writes its line straight into
// that sink while the default logger is still this one (held, so the address stays unique).
std::shared_ptr<spdlog::logger> g_logger;
std::shared_ptr<detail::BufferedSink> g_sink;

// The daemon's flusher writes at least this often (and as soon as 32 KiB accumulate).
constexpr std::chrono::milliseconds kFlushInterval{500};

spdlog::level::level_enum parse_level(const std::string& level) {
    static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
        {"trace", spdlog::level::trace},       {"debug", spdlog::level::debug},
        {"info", spdlog::level::info},         {"warn", spdlog::level::warn},
        {"warning", spdlog::level::warn},      {"error", spdlog::level::err},
        {"critical", spdlog::level::critical}, {"off", spdlog::level::off},
    };
    for (const auto& [name, value] : kLevels) {
        if (name == level) {
            return value;
        }
    }
    throw std::invalid_argument("unknown log level: " + level);
}

void install(const LogSettings& settings, detail::BufferedSink::Writer writer,
             std::chrono::milliseconds flush_interval) {
    const auto level = parse_level(settings.level);
    // The previous sink (tests call setup more than once) stops its flusher first.
    g_logger.reset();
    g_sink.reset();
    auto sink = std::make_shared<detail::BufferedSink>(std::move(writer), flush_interval);
    if (settings.format == LogFormat::json) {
        sink->set_formatter(std::make_unique<detail::JsonFormatter>());
    } else {
        sink->set_formatter(std::make_unique<detail::TextFormatter>());
    }
    auto logger = std::make_shared<spdlog::logger>("nmid", sink);
    logger->set_level(level);
    // The sink decides when to write (threshold, warn and above); the logger never flushes.
    logger->flush_on(spdlog::level::off);
    g_format.store(settings.format, std::memory_order_relaxed);
    g_sink = std::move(sink);
    g_logger = logger;
    spdlog::set_default_logger(std::move(logger));
}

template <class Buffer>
void append_int(Buffer& out, std::int64_t value) {
    std::array<char, 24> digits{};
    const auto result = std::to_chars(digits.data(), digits.data() + digits.size(), value);
    out.append(digits.data(), result.ptr);
}

// An audit line is <status and latency><tail>: the tail (method, path, peer, route, pod,
// identity, cache outcome, error) is the same for every request a client repeats.

/// `status (200) took 537597 ns for ` or `"status":200,"took_ns":537597,`.
template <class Buffer>
void build_head(Buffer& out, const AuditRecord& r, LogFormat format) {
    if (format == LogFormat::json) {
        detail::append(out, "\"status\":");
        append_int(out, r.status);
        detail::append(out, ",\"took_ns\":");
        append_int(out, r.took.count());
        out.push_back(',');
    } else {
        detail::append(out, "status (");
        append_int(out, r.status);
        detail::append(out, ") took ");
        append_int(out, r.took.count());
        detail::append(out, " ns for ");
    }
}

template <class Buffer>
void build_text_tail(Buffer& out, const AuditRecord& r, std::string_view path) {
    detail::append(out, "req.method=");
    detail::append_text_escaped(out, r.method);
    detail::append(out, " reg.path=");
    detail::append_text_escaped(out, path);
    detail::append(out, " req.remote=");
    detail::append_text_escaped(out, r.remote);
    detail::append_text_field(out, "route", r.route);
    if (!r.pod_namespace.empty() || !r.pod_name.empty()) {
        // `pod=ns/name` as one field: quoted when either part needs it. Escaping is per byte
        // (a UTF-8 sequence cannot span the '/'), so the parts are escaped apart.
        const detail::Scan ns = detail::scan(r.pod_namespace);
        const detail::Scan name = detail::scan(r.pod_name);
        const bool quoted = ns.spacing || name.spacing;
        detail::append(out, quoted ? " pod=\"" : " pod=");
        detail::append_text_scanned(out, r.pod_namespace, ns, quoted);
        out.push_back('/');
        detail::append_text_scanned(out, r.pod_name, name, quoted);
        if (quoted) {
            out.push_back('"');
        }
    }
    detail::append_text_field(out, "identity", r.identity);
    detail::append_text_field(out, "source", r.source);
    detail::append_text_field(out, "cache", r.cache);
    detail::append_text_field(out, "error", r.error);
}

template <class Buffer>
void build_json_tail(Buffer& out, const AuditRecord& r, std::string_view path) {
    detail::append(out, "\"req.method\":\"");
    detail::append_json_escaped(out, r.method);
    detail::append(out, "\",\"reg.path\":\"");
    detail::append_json_escaped(out, path);
    detail::append(out, "\",\"req.remote\":\"");
    detail::append_json_escaped(out, r.remote);
    out.push_back('"');
    detail::append_json_field(out, "route", r.route);
    if (!r.pod_namespace.empty() || !r.pod_name.empty()) {
        detail::append(out, ",\"pod\":\"");
        detail::append_json_escaped(out, r.pod_namespace);
        out.push_back('/');
        detail::append_json_escaped(out, r.pod_name);
        out.push_back('"');
    }
    detail::append_json_field(out, "identity", r.identity);
    detail::append_json_field(out, "source", r.source);
    detail::append_json_field(out, "cache", r.cache);
    detail::append_json_field(out, "error", r.error);
}

template <class Buffer>
void build_tail(Buffer& out, const AuditRecord& r, std::string_view path, LogFormat format) {
    if (format == LogFormat::json) {
        build_json_tail(out, r, path);
    } else {
        build_text_tail(out, r, path);
    }
}

/// The tail of this thread's last audit line and the fields it was made of. A pod repeats its
/// requests (an SDK's polling and retries, a burst from one workload), so the next line's tail
/// is usually the same bytes: comparing ~100 bytes of fields and copying the tail costs a
/// fraction of escaping and formatting nine fields again.
class TailMemo {
public:
    /// The tail of `r` in `format`: the remembered one when every field is byte-equal.
    std::string_view get(const AuditRecord& r, std::string_view path, LogFormat format) {
        const std::array<std::string_view, kFields> now = fields(r, path);
        if (valid_ && format == format_ && same(now)) {
            return tail_.view();
        }
        valid_ = false;
        tail_.clear();
        build_tail(tail_, r, path, format);
        std::size_t total = 0;
        for (const std::string_view field : now) {
            total += field.size();
        }
        if (total <= kMaxKeptBytes) {
            char* at = key_.data();
            for (std::size_t i = 0; i < kFields; ++i) {
                sizes_[i] = now[i].size();
                if (!now[i].empty()) {
                    std::memcpy(at, now[i].data(), now[i].size());
                }
                at += now[i].size();
            }
            format_ = format;
            valid_ = true;
        }
        return tail_.view();
    }

private:
    static constexpr std::size_t kFields = 10;
    /// Longer fields (odd paths) are formatted every time rather than kept per thread.
    static constexpr std::size_t kMaxKeptBytes = 1024;

    static std::array<std::string_view, kFields> fields(const AuditRecord& r,
                                                        std::string_view path) {
        return {r.method,   path,       r.remote, r.route, r.pod_namespace,
                r.pod_name, r.identity, r.source, r.cache, r.error};
    }

    [[nodiscard]] bool same(const std::array<std::string_view, kFields>& now) const {
        for (std::size_t i = 0; i < kFields; ++i) {
            if (now[i].size() != sizes_[i]) {
                return false;  // most other requests differ in a length already
            }
        }
        const char* at = key_.data();
        for (const std::string_view field : now) {
            if (!field.empty() && std::memcmp(at, field.data(), field.size()) != 0) {
                return false;
            }
            at += field.size();
        }
        return true;
    }

    bool valid_ = false;
    LogFormat format_ = LogFormat::text;
    std::array<std::size_t, kFields> sizes_{};
    std::array<char, kMaxKeptBytes> key_{};  ///< the fields' bytes, back to back
    detail::ByteBuffer tail_;                ///< their formatted tail
};

TailMemo& tail_memo() {
    thread_local TailMemo memo;
    return memo;
}

}  // namespace

void setup(const LogSettings& settings) {
    install(settings, detail::write_stdout, kFlushInterval);
}

void setup_for_test(const LogSettings& settings, std::shared_ptr<std::ostringstream> out,
                    std::chrono::milliseconds flush_interval) {
    install(
        settings,
        [out = std::move(out)](std::string_view data) {
            out->write(data.data(), static_cast<std::streamsize>(data.size()));
        },
        flush_interval);
}

void setup_for_test(const LogSettings& settings, std::function<void(std::string_view)> writer,
                    std::chrono::milliseconds flush_interval) {
    install(settings, std::move(writer), flush_interval);
}

void flush() {
    spdlog::default_logger_raw()->flush();
}

void audit(const AuditRecord& record) {
    spdlog::logger* logger = spdlog::default_logger_raw();
    if (!logger->should_log(spdlog::level::info)) {
        return;
    }
    // The query string may carry a client id; it never reaches the log.
    const std::string_view path = record.path.substr(0, record.path.find('?'));
    const LogFormat format = g_format.load(std::memory_order_relaxed);
    if (logger == g_logger.get()) {
        // The usual case: the whole line goes straight into the sink's buffer, as the
        // formatters would have written it around the payload below.
        const std::string_view tail = tail_memo().get(record, path, format);
        g_sink->append_line([&](detail::ByteBuffer& out, detail::Timestamp& timestamp) {
            using namespace std::string_view_literals;
            const bool json = format == LogFormat::json;
            detail::append(out, json ? "{\"ts\":\""sv : ""sv);
            timestamp.append_to(out, spdlog::log_clock::now());
            detail::append(out, json ? "\",\"level\":\"info\",\"msg\":\"request\","sv : " I "sv);
            build_head(out, record, format);
            detail::append(out, tail);
            detail::append(out, json ? "}\n"sv : "\n"sv);
        });
        return;
    }
    // Another default logger (installed after setup()): an ordinary record whose payload our
    // formatters recognise by the marker.
    fmt::basic_memory_buffer<char, 512> payload;
    build_head(payload, record, format);
    build_tail(payload, record, path, format);
    logger->log(spdlog::source_loc{__FILE__, __LINE__, detail::kAuditMarker}, spdlog::level::info,
                spdlog::string_view_t{payload.data(), payload.size()});
}

}  // namespace nmid::logging
