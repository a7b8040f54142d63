#include "format.hpp"

#include <ctime>

namespace nmid::logging::detail {

const char kAuditMarker[] = "nmid-audit";

namespace {

char level_letter(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace:
            return 'T';
        case spdlog::level::debug:
            return 'D';
        case spdlog::level::info:
            return 'I';
        case spdlog::level::warn:
            return 'W';
        case spdlog::level::err:
            return 'E';
        case spdlog::level::critical:
            return 'C';
        default:
            return '?';
    }
}

std::string_view level_name(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace:
            return "trace";
        case spdlog::level::debug:
            return "debug";
        case spdlog::level::info:
            return "info";
        case spdlog::level::warn:
            return "warn";
        case spdlog::level::err:
            return "error";
        case spdlog::level::critical:
            return "critical";
        default:
            return "off";
    }
}

void put_digits(char* out, unsigned value, int width) {
    for (int i = width - 1; i >= 0; --i) {
        out[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
}

}  // namespace

std::string_view Timestamp::format(std::chrono::system_clock::time_point time) {
    using namespace std::chrono;
    const auto since_epoch = floor<milliseconds>(time).time_since_epoch();
    const auto second = floor<seconds>(since_epoch);
    char* p = text_.data();
    if (second.count() != cached_second_) {
        cached_second_ = second.count();
        const auto t = static_cast<std::time_t>(cached_second_);
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        put_digits(p, static_cast<unsigned>(tm.tm_year + 1900), 4);
        p[4] = '-';
        put_digits(p + 5, static_cast<unsigned>(tm.tm_mon + 1), 2);
        p[7] = '-';
        put_digits(p + 8, static_cast<unsigned>(tm.tm_mday), 2);
        p[10] = 'T';
        put_digits(p + 11, static_cast<unsigned>(tm.tm_hour), 2);
        p[13] = ':';
        put_digits(p + 14, static_cast<unsigned>(tm.tm_min), 2);
        p[16] = ':';
        put_digits(p + 17, static_cast<unsigned>(tm.tm_sec), 2);
        p[19] = '.';
        p[23] = 'Z';
    }
    put_digits(p + 20, static_cast<unsigned>((since_epoch - second).count()), 3);
    return {text_.data(), text_.size()};
}

void TextFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
    timestamp_.append_to(dest, msg.time);
    dest.push_back(' ');
    dest.push_back(level_letter(msg.level));
    dest.push_back(' ');
    const std::string_view payload{msg.payload.data(), msg.payload.size()};
    if (is_audit(msg)) {
        append(dest, payload);
    } else {
        append_text_escaped(dest, payload);
    }
    dest.push_back('\n');
}

std::unique_ptr<spdlog::formatter> TextFormatter::clone() const {
    return std::make_unique<TextFormatter>();
}

void JsonFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
    append(dest, "{\"ts\":\"");
    timestamp_.append_to(dest, msg.time);
    append(dest, "\",\"level\":\"");
    append(dest, level_name(msg.level));
    append(dest, "\",\"msg\":\"");
    const std::string_view payload{msg.payload.data(), msg.payload.size()};
    if (is_audit(msg)) {
        append(dest, "request\",");
        append(dest, payload);
    } else {
        append_json_escaped(dest, payload);
        dest.push_back('"');
    }
    append(dest, "}\n");
}

std::unique_ptr<spdlog::formatter> JsonFormatter::clone() const {
    return std::make_unique<JsonFormatter>();
}

}  // namespace nmid::logging::detail
