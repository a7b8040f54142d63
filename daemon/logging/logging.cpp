#include "nmid/logging/logging.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <utility>

#include "buffered_sink.hpp"
#include "format.hpp"

namespace nmid::logging {
namespace {

// Which payload audit() builds; must match the formatter installed by the last setup().
std::atomic<LogFormat> g_format{LogFormat::text};

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

void install(const LogSettings& settings, detail::BufferedSink::Writer writer) {
    const auto level = parse_level(settings.level);
    auto sink = std::make_shared<detail::BufferedSink>(std::move(writer));
    if (settings.format == LogFormat::json) {
        sink->set_formatter(std::make_unique<detail::JsonFormatter>());
    } else {
        sink->set_formatter(std::make_unique<detail::TextFormatter>());
    }
    auto logger = std::make_shared<spdlog::logger>("nmid", std::move(sink));
    logger->set_level(level);
    // The sink decides when to write (threshold, warn and above); the logger never flushes.
    logger->flush_on(spdlog::level::off);
    g_format.store(settings.format, std::memory_order_relaxed);
    spdlog::set_default_logger(std::move(logger));
}

template <class Buffer>
void build_text(Buffer& out, const AuditRecord& r, std::string_view path) {
    fmt::format_to(fmt::appender(out), "status ({}) took {} ns for req.method=", r.status,
                   r.took.count());
    detail::append_text_escaped(out, r.method);
    detail::append(out, " reg.path=");
    detail::append_text_escaped(out, path);
    detail::append(out, " req.remote=");
    detail::append_text_escaped(out, r.remote);
    detail::append_text_field(out, "route", r.route);
    if (!r.pod_namespace.empty() || !r.pod_name.empty()) {
        fmt::basic_memory_buffer<char, 128> pod;
        detail::append(pod, r.pod_namespace);
        pod.push_back('/');
        detail::append(pod, r.pod_name);
        detail::append_text_field(out, "pod", std::string_view{pod.data(), pod.size()});
    }
    detail::append_text_field(out, "identity", r.identity);
    detail::append_text_field(out, "cache", r.cache);
    detail::append_text_field(out, "error", r.error);
}

template <class Buffer>
void build_json(Buffer& out, const AuditRecord& r, std::string_view path) {
    fmt::format_to(fmt::appender(out), "\"status\":{},\"took_ns\":{},\"req.method\":\"", r.status,
                   r.took.count());
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
    detail::append_json_field(out, "cache", r.cache);
    detail::append_json_field(out, "error", r.error);
}

}  // namespace

void setup(const LogSettings& settings) {
    install(settings, detail::write_stdout);
}

void setup_for_test(const LogSettings& settings, std::shared_ptr<std::ostringstream> out) {
    install(settings, [out = std::move(out)](std::string_view data) {
        out->write(data.data(), static_cast<std::streamsize>(data.size()));
    });
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
    fmt::basic_memory_buffer<char, 512> payload;
    if (g_format.load(std::memory_order_relaxed) == LogFormat::json) {
        build_json(payload, record, path);
    } else {
        build_text(payload, record, path);
    }
    logger->log(spdlog::source_loc{__FILE__, __LINE__, detail::kAuditMarker}, spdlog::level::info,
                spdlog::string_view_t{payload.data(), payload.size()});
}

}  // namespace nmid::logging
