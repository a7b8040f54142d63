#include "values.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cmath>
#include <limits>

#include "nmid/config/config.hpp"

namespace nmid::config::detail {
namespace {

constexpr std::string_view kDurationUnits = "units: ns, us, ms, s, m, h; e.g. 500ms, 15s, 1m30s";

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

std::uint64_t unit_nanoseconds(std::string_view unit) {
    struct Unit {
        std::string_view name;
        std::uint64_t ns;
    };
    static constexpr std::array<Unit, 8> kUnits{{
        {"ns", 1},
        {"us", 1'000},
        {"\xC2\xB5s", 1'000},  // U+00B5 micro sign, as Go accepts
        {"\xCE\xBCs", 1'000},  // U+03BC Greek mu
        {"ms", 1'000'000},
        {"s", 1'000'000'000},
        {"m", 60'000'000'000},
        {"h", 3'600'000'000'000},
    }};
    for (const auto& u : kUnits) {
        if (u.name == unit) {
            return u.ns;
        }
    }
    return 0;
}

ParsedDuration duration_error(std::string reason) {
    return {{}, std::move(reason)};
}

}  // namespace

std::optional<bool> parse_bool(std::string_view text) {
    if (text == "1" || text == "t" || text == "T" || text == "TRUE" || text == "true" ||
        text == "True") {
        return true;
    }
    if (text == "0" || text == "f" || text == "F" || text == "FALSE" || text == "false" ||
        text == "False") {
        return false;
    }
    return std::nullopt;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5) {
        return std::nullopt;
    }
    std::uint32_t value = 0;
    for (const char c : text) {
        if (!is_digit(c)) {
            return std::nullopt;
        }
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (value > std::numeric_limits<std::uint16_t>::max()) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

std::optional<std::int64_t> parse_int(std::string_view text) {
    // from_chars takes '-' but not '+'; Go's ParseInt takes both.
    if (text.size() > 1 && text.front() == '+' && is_digit(text[1])) {
        text.remove_prefix(1);
    }
    std::int64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return value;
}

std::optional<double> parse_real(std::string_view text) {
    if (text.size() > 1 && text.front() == '+' && (is_digit(text[1]) || text[1] == '.')) {
        text.remove_prefix(1);
    }
    double value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end || !std::isfinite(value)) {
        return std::nullopt;
    }
    return value;
}

bool is_ip_address(std::string_view text) {
    // inet_pton needs a NUL-terminated string; the longest IPv6 text is 45 characters.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
        return false;
    }
    const std::string copy(text);
    std::array<unsigned char, 16> buffer{};
    return inet_pton(AF_INET, copy.c_str(), buffer.data()) == 1 ||
           inet_pton(AF_INET6, copy.c_str(), buffer.data()) == 1;
}

ParsedDuration parse_duration(std::string_view text) {
    // Mirrors Go's time.ParseDuration, overflow checks included, so values that Go-based
    // tooling accepts mean the same here.
    constexpr std::uint64_t kLimit = std::uint64_t{1} << 63;
    std::string_view s = text;
    bool negative = false;
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
        negative = s.front() == '-';
        s.remove_prefix(1);
    }
    if (s == "0") {
        return {};
    }
    if (s.empty()) {
        return duration_error("not a duration (" + std::string(kDurationUnits) + ")");
    }
    std::uint64_t total = 0;
    while (!s.empty()) {
        if (s.front() != '.' && !is_digit(s.front())) {
            return duration_error("not a duration (" + std::string(kDurationUnits) + ")");
        }
        std::uint64_t whole = 0;
        std::size_t i = 0;
        for (; i < s.size() && is_digit(s[i]); ++i) {
            if (whole > kLimit / 10) {
                return duration_error("duration out of range");
            }
            whole = whole * 10 + static_cast<std::uint64_t>(s[i] - '0');
            if (whole > kLimit) {
                return duration_error("duration out of range");
            }
        }
        const bool has_whole = i > 0;
        s.remove_prefix(i);

        std::uint64_t fraction = 0;
        double scale = 1;
        bool has_fraction = false;
        if (!s.empty() && s.front() == '.') {
            s.remove_prefix(1);
            bool saturated = false;
            for (i = 0; i < s.size() && is_digit(s[i]); ++i) {
                // Digits beyond int64 precision are dropped, as Go does.
                if (saturated || fraction > (kLimit - 1) / 10) {
                    saturated = true;
                    continue;
                }
                fraction = fraction * 10 + static_cast<std::uint64_t>(s[i] - '0');
                scale *= 10;
            }
            has_fraction = i > 0;
            s.remove_prefix(i);
        }
        if (!has_whole && !has_fraction) {
            return duration_error("not a duration (" + std::string(kDurationUnits) + ")");
        }

        for (i = 0; i < s.size() && s[i] != '.' && !is_digit(s[i]); ++i) {
        }
        if (i == 0) {
            return duration_error("missing unit (" + std::string(kDurationUnits) + ")");
        }
        const std::string_view unit = s.substr(0, i);
        s.remove_prefix(i);
        const std::uint64_t unit_ns = unit_nanoseconds(unit);
        if (unit_ns == 0) {
            return duration_error("unknown unit \"" + std::string(unit) + "\" (" +
                                  std::string(kDurationUnits) + ")");
        }
        if (whole > kLimit / unit_ns) {
            return duration_error("duration out of range");
        }
        whole *= unit_ns;
        if (fraction > 0) {
            whole += static_cast<std::uint64_t>(static_cast<double>(fraction) *
                                                (static_cast<double>(unit_ns) / scale));
            if (whole > kLimit) {
                return duration_error("duration out of range");
            }
        }
        total += whole;
        if (total > kLimit) {
            return duration_error("duration out of range");
        }
    }
    if (negative) {
        // total may be exactly 2^63, which is representable only as a negative value.
        return {
            std::chrono::nanoseconds{total == 0 ? 0 : -static_cast<std::int64_t>(total - 1) - 1},
            {}};
    }
    if (total > kLimit - 1) {
        return duration_error("duration out of range");
    }
    return {std::chrono::nanoseconds{static_cast<std::int64_t>(total)}, {}};
}

std::string format_duration(std::chrono::nanoseconds value) {
    if (value.count() == 0) {
        return "0s";
    }
    std::string out;
    // Negative values never pass validation, but stay printable for diagnostics.
    std::uint64_t rest = 0;
    if (value.count() < 0) {
        out = "-";
        rest = static_cast<std::uint64_t>(-(value.count() + 1)) + 1;
    } else {
        rest = static_cast<std::uint64_t>(value.count());
    }
    struct Unit {
        std::string_view name;
        std::uint64_t ns;
    };
    static constexpr std::array<Unit, 6> kUnits{{{"h", 3'600'000'000'000},
                                                 {"m", 60'000'000'000},
                                                 {"s", 1'000'000'000},
                                                 {"ms", 1'000'000},
                                                 {"us", 1'000},
                                                 {"ns", 1}}};
    for (const auto& unit : kUnits) {
        if (rest >= unit.ns) {
            out += std::to_string(rest / unit.ns);
            out += unit.name;
            rest %= unit.ns;
        }
    }
    return out;
}

}  // namespace nmid::config::detail

namespace nmid::config {

bool split_endpoint(std::string_view text, std::string& host, std::uint16_t& port) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return false;
    }
    std::string_view address = text.substr(0, colon);
    if (address.starts_with('[')) {
        if (!address.ends_with(']')) {
            return false;
        }
        address = address.substr(1, address.size() - 2);
        if (address.find(':') == std::string_view::npos) {
            return false;  // brackets are for IPv6 only
        }
    } else if (address.find(':') != std::string_view::npos) {
        return false;  // IPv6 needs brackets
    }
    const auto parsed = detail::parse_port(text.substr(colon + 1));
    if (!parsed || !detail::is_ip_address(address)) {
        return false;
    }
    host = address;
    port = *parsed;
    return true;
}

}  // namespace nmid::config
