// Pure HTTP helpers, kept apart from the Beast translation unit so they compile fast.

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "nmid/core/ascii.hpp"
#include "nmid/net/http_client.hpp"

namespace nmid::net {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

std::optional<int> fixed_digits(std::string_view s) {
    int value = 0;
    for (const char c : s) {
        if (!is_digit(c)) {
            return std::nullopt;
        }
        value = value * 10 + (c - '0');
    }
    return value;
}

// IMF-fixdate only (`Sun, 06 Nov 1994 08:49:37 GMT`): RFC 9110 requires senders to use it;
// the obsolete RFC 850 and asctime forms are not worth the code for a retry hint.
std::optional<std::chrono::sys_seconds> parse_imf_fixdate(std::string_view s) {
    static constexpr std::array<std::string_view, 12> kMonths{
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT") {
        return std::nullopt;
    }
    const auto day = fixed_digits(s.substr(5, 2));
    const auto year = fixed_digits(s.substr(12, 4));
    const auto hour = fixed_digits(s.substr(17, 2));
    const auto minute = fixed_digits(s.substr(20, 2));
    const auto second = fixed_digits(s.substr(23, 2));
    unsigned month = 0;
    for (unsigned i = 0; i < kMonths.size(); ++i) {
        if (s.substr(8, 3) == kMonths[i]) {
            month = i + 1;
        }
    }
    if (!day || !year || !hour || !minute || !second || month == 0 || *hour > 23 || *minute > 59 ||
        *second > 60) {
        return std::nullopt;
    }
    const std::chrono::year_month_day ymd{std::chrono::year{*year}, std::chrono::month{month},
                                          std::chrono::day{static_cast<unsigned>(*day)}};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    return std::chrono::sys_days{ymd} + std::chrono::hours{*hour} + std::chrono::minutes{*minute} +
           std::chrono::seconds{*second};
}

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, WallTime now) {
    value = trim(value);
    if (value.empty()) {
        return std::nullopt;
    }
    if (is_digit(value.front())) {
        std::int64_t seconds = 0;
        const auto* end = value.data() + value.size();
        const auto [ptr, ec] = std::from_chars(value.data(), end, seconds);
        if (ptr != end) {
            return std::nullopt;
        }
        if (ec == std::errc::result_out_of_range) {
            // Absurdly long, but still "wait": callers cap it with their own maximum.
            return std::chrono::seconds{std::numeric_limits<std::int32_t>::max()};
        }
        if (ec != std::errc{}) {
            return std::nullopt;
        }
        return std::chrono::seconds{seconds};
    }
    const auto date = parse_imf_fixdate(value);
    if (!date) {
        return std::nullopt;
    }
    const auto delta = std::chrono::duration_cast<std::chrono::seconds>(*date - now);
    return std::max(delta, std::chrono::seconds{0});
}

}  // namespace nmid::net
