#pragma once

// Line formats of the logging module: escaping, RFC 3339 timestamps and the two spdlog
// formatters (text and JSON). Header-only templates so the audit line and the formatters share
// one escaping code path over any fmt buffer.

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "nmid/core/utf8.hpp"

namespace nmid::logging::detail {

/// Identifies audit records: audit() passes it as source_loc::funcname, so formatters know the
/// payload was built by audit() (pointer identity; message text cannot forge it).
extern const char kAuditMarker[];

[[nodiscard]] inline bool is_audit(const spdlog::details::log_msg& msg) {
    return msg.source.funcname == kAuditMarker;
}

inline constexpr std::string_view kHexDigits = "0123456789abcdef";

/// A growable byte buffer whose appends are a capacity check and a memcpy (std::string's
/// range append goes through replace(), several times the cost for the short pieces a log
/// line is made of).
class ByteBuffer {
public:
    ByteBuffer() = default;
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;

    void append(const char* first, const char* last) {
        const auto n = static_cast<std::size_t>(last - first);
        if (capacity_ - size_ < n) {
            grow(n);
        }
        if (n != 0) {
            std::memcpy(data_.get() + size_, first, n);
        }
        size_ += n;
    }
    void push_back(char c) {
        if (size_ == capacity_) {
            grow(1);
        }
        data_[size_++] = c;
    }
    void reserve(std::size_t capacity) {
        if (capacity > capacity_) {
            grow(capacity - size_);
        }
    }
    void clear() noexcept { size_ = 0; }
    void swap(ByteBuffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
        std::swap(capacity_, other.capacity_);
    }
    [[nodiscard]] const char* data() const noexcept { return data_.get(); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::string_view view() const noexcept { return {data_.get(), size_}; }

private:
    void grow(std::size_t more) {
        const std::size_t capacity = std::max(size_ + more, 2 * capacity_);
        auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
        if (size_ != 0) {
            std::memcpy(bigger.get(), data_.get(), size_);
        }
        data_ = std::move(bigger);
        capacity_ = capacity;
    }

    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

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

/// What a value needs, from one pass over it.
struct Scan {
    bool control = false;  ///< a control character, DEL or byte >= 0x80: escaped in any case
    bool quote = false;    ///< '"' or '\\': escaped in JSON and inside text quotes
    bool spacing = false;  ///< ' ', '"' or '=': a text field value needs quotes
};

/// Per byte, the Scan flags it sets (bit 0 control, bit 1 quote, bit 2 spacing).
inline constexpr std::array<std::uint8_t, 256> kScanBits = [] {
    std::array<std::uint8_t, 256> bits{};
    for (std::size_t c = 0; c < bits.size(); ++c) {
        if (c < 0x20 || c >= 0x7F) {
            bits[c] |= 1U;
        }
        if (c == '"' || c == '\\') {
            bits[c] |= 2U;
        }
        if (c == ' ' || c == '"' || c == '=') {
            bits[c] |= 4U;
        }
    }
    return bits;
}();

/// The fields of a log line are short and clean almost always: one table lookup per byte,
/// eight at a time, and no branch until the end.
[[nodiscard]] inline Scan scan(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    unsigned bits = 0;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        bits |= kScanBits[p[i]] | kScanBits[p[i + 1]] | kScanBits[p[i + 2]] | kScanBits[p[i + 3]] |
                kScanBits[p[i + 4]] | kScanBits[p[i + 5]] | kScanBits[p[i + 6]] |
                kScanBits[p[i + 7]];
    }
    if (i < n) {
        // The rest without a loop: the last eight bytes again (overlapping), or for a short
        // value bytes that cover it (some twice).
        const auto at = [&](std::size_t k) { return kScanBits[p[k]]; };
        if (n >= 8) {
            const std::size_t l = n - 8;
            bits |= at(l) | at(l + 1) | at(l + 2) | at(l + 3) | at(l + 4) | at(l + 5) | at(l + 6) |
                    at(l + 7);
        } else if (n >= 4) {
            bits |= at(0) | at(1) | at(2) | at(3) | at(n - 4) | at(n - 3) | at(n - 2) | at(n - 1);
        } else {
            bits |= at(0) | at(n / 2) | at(n - 1);
        }
    }
    return Scan{
        .control = (bits & 1U) != 0, .quote = (bits & 2U) != 0, .spacing = (bits & 4U) != 0};
}

/// Appends `s` as the inside of a JSON string: '"', '\' and control characters escaped, valid
/// UTF-8 kept, each invalid byte replaced by U+FFFD, so the result always parses.
template <class Buffer>
void append_json_escaped_slow(Buffer& out, std::string_view s);

template <class Buffer>
inline void append_json_escaped(Buffer& out, std::string_view s) {
    const Scan found = scan(s);
    if (!found.control && !found.quote) {
        append(out, s);  // the usual case: nothing to escape
        return;
    }
    append_json_escaped_slow(out, s);
}

template <class Buffer>
[[gnu::noinline]] void append_json_escaped_slow(Buffer& out, std::string_view s) {
    std::size_t i = 0;
    std::size_t run = 0;  // start of the bytes not yet copied
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
void append_text_escaped_slow(Buffer& out, std::string_view s, bool quoted);

/// append_text_escaped() of `s` whose scan() is `found`.
template <class Buffer>
inline void append_text_scanned(Buffer& out, std::string_view s, const Scan& found, bool quoted) {
    if (!found.control && !(quoted && found.quote)) {
        append(out, s);  // the usual case: nothing to escape
        return;
    }
    append_text_escaped_slow(out, s, quoted);
}

template <class Buffer>
inline void append_text_escaped(Buffer& out, std::string_view s, bool quoted = false) {
    append_text_scanned(out, s, scan(s), quoted);
}

template <class Buffer>
[[gnu::noinline]] void append_text_escaped_slow(Buffer& out, std::string_view s, bool quoted) {
    std::size_t i = 0;
    std::size_t run = 0;
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
    const Scan found = scan(value);
    if (!found.spacing) {
        append_text_scanned(out, value, found, false);
        return;
    }
    out.push_back('"');
    append_text_scanned(out, value, found, true);
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
/// the last second seen; not thread-safe (each user runs under its sink's mutex).
class Timestamp {
public:
    /// The text of `time`; valid until the next call.
    [[nodiscard]] std::string_view format(std::chrono::system_clock::time_point time);

    template <class Buffer>
    void append_to(Buffer& out, std::chrono::system_clock::time_point time) {
        append(out, format(time));
    }

private:
    std::int64_t cached_second_ = INT64_MIN;
    std::array<char, 24> text_{};  // "YYYY-MM-DDTHH:MM:SS.mmmZ"
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
