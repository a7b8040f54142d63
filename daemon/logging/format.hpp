#pragma once

// Line formats of the logging module: escaping, RFC 3339 timestamps and the two spdlog
// formatters (text and JSON). Header-only templates so the audit line and the formatters share
// one escaping code path over any fmt buffer.

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "nmid/core/utf8.hpp"

namespace nmid::logging::detail {

/// Identifies audit records: audit() passes it as source_loc::funcname, so formatters know the
/// payload was built by audit() (pointer identity; message text cannot forge it).
extern const char kAuditMarker[];

[[nodiscard]] inline bool is_audit(const spdlog::details::log_msg& msg) {
    return msg.source.funcname == kAuditMarker;
}

inline constexpr std::string_view kHexDigits = "0123456789abcdef";

template <class Buffer>
void append(Buffer& out, std::string_view s) {
    out.append(s.data(), s.data() + s.size());
}

/// Byte classes for the escapers: runs of `plain` bytes are copied with one append.
enum class ByteClass : std::uint8_t { plain, control, quote, high };

inline constexpr std::array<ByteClass, 256> kByteClasses = [] {
    std::array<ByteClass, 256> classes{};
    for (std::size_t c = 0; c < classes.size(); ++c) {
        if (c < 0x20 || c == 0x7F) {
            classes[c] = ByteClass::control;
        } else if (c == '"' || c == '\\') {
            classes[c] = ByteClass::quote;
        } else if (c >= 0x80) {
            classes[c] = ByteClass::high;
        }
    }
    return classes;
}();

[[nodiscard]] inline ByteClass byte_class(char c) {
    return kByteClasses[static_cast<unsigned char>(c)];
}

/// Appends `s` as the inside of a JSON string: '"', '\' and control characters escaped, valid
/// UTF-8 kept, each invalid byte replaced by U+FFFD, so the result always parses.
template <class Buffer>
void append_json_escaped(Buffer& out, std::string_view s) {
    std::size_t run = 0;  // start of the bytes not yet copied
    std::size_t i = 0;
    while (i < s.size()) {
        const ByteClass kind = byte_class(s[i]);
        if (kind == ByteClass::plain) {
            ++i;
            continue;
        }
        if (kind == ByteClass::high) {
            if (const std::size_t length = utf8_sequence_length(s, i); length != 0) {
                i += length;
                continue;
            }
        }
        append(out, s.substr(run, i - run));
        const auto c = static_cast<unsigned char>(s[i]);
        switch (c) {
            case '"':
                append(out, "\\\"");
                break;
            case '\\':
                append(out, "\\\\");
                break;
            case '\n':
                append(out, "\\n");
                break;
            case '\r':
                append(out, "\\r");
                break;
            case '\t':
                append(out, "\\t");
                break;
            case '\b':
                append(out, "\\b");
                break;
            case '\f':
                append(out, "\\f");
                break;
            default:
                if (c >= 0x80) {
                    append(out, "\\ufffd");
                } else {
                    append(out, "\\u00");
                    out.push_back(kHexDigits[c >> 4U]);
                    out.push_back(kHexDigits[c & 0xFU]);
                }
        }
        ++i;
        run = i;
    }
    append(out, s.substr(run));
}

/// Appends `s` for a text line: valid UTF-8 kept; \n, \r, \t escaped as such, other control
/// characters and invalid bytes as \xNN, so one record stays one line. With `quoted`, '"' and
/// '\' are backslash-escaped too (the caller adds the quotes).
template <class Buffer>
void append_text_escaped(Buffer& out, std::string_view s, bool quoted = false) {
    std::size_t run = 0;
    std::size_t i = 0;
    while (i < s.size()) {
        const ByteClass kind = byte_class(s[i]);
        if (kind == ByteClass::plain || (kind == ByteClass::quote && !quoted)) {
            ++i;
            continue;
        }
        if (kind == ByteClass::high) {
            if (const std::size_t length = utf8_sequence_length(s, i); length != 0) {
                i += length;
                continue;
            }
        }
        append(out, s.substr(run, i - run));
        const auto c = static_cast<unsigned char>(s[i]);
        switch (c) {
            case '\n':
                append(out, "\\n");
                break;
            case '\r':
                append(out, "\\r");
                break;
            case '\t':
                append(out, "\\t");
                break;
            case '"':
                append(out, "\\\"");
                break;
            case '\\':
                append(out, "\\\\");
                break;
            default:
                append(out, "\\x");
                out.push_back(kHexDigits[c >> 4U]);
                out.push_back(kHexDigits[c & 0xFU]);
        }
        ++i;
        run = i;
    }
    append(out, s.substr(run));
}

[[nodiscard]] inline bool needs_quotes(std::string_view value) {
    for (const char c : value) {
        if (c == ' ' || c == '"' || c == '=') {
            return true;
        }
    }
    return false;
}

/// ` key=value` for the text audit line; nothing when `value` is empty. A value holding a
/// space, '"' or '=' is double-quoted so the line stays splittable (logfmt).
template <class Buffer>
void append_text_field(Buffer& out, std::string_view key, std::string_view value) {
    if (value.empty()) {
        return;
    }
    out.push_back(' ');
    append(out, key);
    out.push_back('=');
    if (!needs_quotes(value)) {
        append_text_escaped(out, value);
        return;
    }
    out.push_back('"');
    append_text_escaped(out, value, /*quoted=*/true);
    out.push_back('"');
}

/// `,"key":"value"` for the JSON audit record; nothing when `value` is empty.
template <class Buffer>
void append_json_field(Buffer& out, std::string_view key, std::string_view value) {
    if (value.empty()) {
        return;
    }
    append(out, ",\"");
    append(out, key);
    append(out, "\":\"");
    append_json_escaped(out, value);
    out.push_back('"');
}

/// RFC 3339 UTC with milliseconds ("2026-11-23T10:00:00.123Z"). Caches the date-time part of
/// the last second seen; not thread-safe (each formatter runs under its sink's mutex).
class Timestamp {
public:
    void append_to(spdlog::memory_buf_t& out, std::chrono::system_clock::time_point time);

private:
    std::int64_t cached_second_ = INT64_MIN;
    std::array<char, 19> prefix_{};  // "YYYY-MM-DDTHH:MM:SS"
};

/// `<ts> <L> <msg>`: level letter T D I W E C, message escaped (audit payloads are pre-escaped).
class TextFormatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
    [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override;

private:
    Timestamp timestamp_;
};

/// `{"ts":..,"level":..,"msg":..}`; for audit records msg is "request" and the payload, a JSON
/// member list built by audit(), follows it.
class JsonFormatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
    [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override;

private:
    Timestamp timestamp_;
};

}  // namespace nmid::logging::detail
