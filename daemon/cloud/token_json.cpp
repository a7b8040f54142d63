#include "nmid/cloud/token_json.hpp"

#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

namespace nmid::cloud {

namespace {

using Json = nlohmann::json;

constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/// Reads fixed pieces of a date string left to right; any mismatch poisons it.
class Cursor {
public:
    explicit Cursor(std::string_view s) : s_{s} {}

    /// 1..max_digits decimal digits.
    std::optional<int> number(std::size_t min_digits, std::size_t max_digits) {
        std::size_t n = 0;
        int value = 0;
        while (n < max_digits && n < s_.size() && is_digit(s_[n])) {
            value = value * 10 + (s_[n] - '0');
            ++n;
        }
        if (n < min_digits) {
            return std::nullopt;
        }
        s_.remove_prefix(n);
        return value;
    }
    bool literal(std::string_view lit) {
        if (s_.substr(0, lit.size()) != lit) {
            return false;
        }
        s_.remove_prefix(lit.size());
        return true;
    }
    bool one_of(std::string_view chars) {
        if (s_.empty() || chars.find(s_.front()) == std::string_view::npos) {
            return false;
        }
        s_.remove_prefix(1);
        return true;
    }
    [[nodiscard]] char peek() const { return s_.empty() ? '\0' : s_.front(); }
    [[nodiscard]] bool done() const { return s_.empty(); }

private:
    std::string_view s_;
};

std::optional<std::int64_t> to_unix(int year, int month, int day, int hour, int minute, int second,
                                    int offset_seconds) {
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return std::nullopt;
    }
    const std::chrono::year_month_day ymd{std::chrono::year{year},
                                          std::chrono::month{static_cast<unsigned>(month)},
                                          std::chrono::day{static_cast<unsigned>(day)}};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    const auto at = std::chrono::sys_days{ymd} + std::chrono::hours{hour} +
                    std::chrono::minutes{minute} + std::chrono::seconds{second - offset_seconds};
    return static_cast<std::int64_t>(at.time_since_epoch().count());
}

/// `+HH:MM`, `-HH:MM`, `Z` (`z`), or nothing (UTC). Returns the offset east of UTC.
std::optional<int> utc_offset(Cursor& c, bool allow_z) {
    if (c.done()) {
        return 0;
    }
    if (allow_z && c.one_of("Zz")) {
        return 0;
    }
    const char sign = c.peek();
    if (!c.one_of("+-")) {
        return std::nullopt;
    }
    const auto hours = c.number(2, 2);
    if (!hours || !c.literal(":")) {
        return std::nullopt;
    }
    const auto minutes = c.number(2, 2);
    if (!minutes || *hours > 23 || *minutes > 59) {
        return std::nullopt;
    }
    const int offset = *hours * 3600 + *minutes * 60;
    return sign == '-' ? -offset : offset;
}

// App Service (2017 API) and adal's formats: `11/23/2026 10:00:00 +00:00`, also with a
// 12-hour clock: `6/12/2023 5:39:16 PM +00:00`.
std::optional<std::int64_t> parse_app_service_date(std::string_view s) {
    Cursor c{s};
    const auto month = c.number(1, 2);
    if (!month || !c.literal("/")) {
        return std::nullopt;
    }
    const auto day = c.number(1, 2);
    if (!day || !c.literal("/")) {
        return std::nullopt;
    }
    const auto year = c.number(4, 4);
    if (!year || !c.literal(" ")) {
        return std::nullopt;
    }
    auto hour = c.number(1, 2);
    if (!hour || !c.literal(":")) {
        return std::nullopt;
    }
    const auto minute = c.number(2, 2);
    if (!minute || !c.literal(":")) {
        return std::nullopt;
    }
    const auto second = c.number(2, 2);
    if (!second) {
        return std::nullopt;
    }
    const bool am = c.literal(" AM");
    const bool pm = !am && c.literal(" PM");
    if (am || pm) {
        if (*hour < 1 || *hour > 12) {
            return std::nullopt;
        }
        hour = *hour % 12 + (pm ? 12 : 0);
    }
    std::optional<int> offset = 0;
    if (!c.done()) {
        if (!c.literal(" ")) {
            return std::nullopt;
        }
        offset = utc_offset(c, false);
    }
    if (!offset || !c.done()) {
        return std::nullopt;
    }
    return to_unix(*year, *month, *day, *hour, *minute, *second, *offset);
}

// RFC 3339: `2026-11-23T10:00:00Z`, `2026-11-23T10:00:00.5+01:00`.
std::optional<std::int64_t> parse_rfc3339(std::string_view s) {
    Cursor c{s};
    const auto year = c.number(4, 4);
    if (!year || !c.literal("-")) {
        return std::nullopt;
    }
    const auto month = c.number(2, 2);
    if (!month || !c.literal("-")) {
        return std::nullopt;
    }
    const auto day = c.number(2, 2);
    if (!day || !c.one_of("Tt ")) {
        return std::nullopt;
    }
    const auto hour = c.number(2, 2);
    if (!hour || !c.literal(":")) {
        return std::nullopt;
    }
    const auto minute = c.number(2, 2);
    if (!minute || !c.literal(":")) {
        return std::nullopt;
    }
    const auto second = c.number(2, 2);
    if (!second) {
        return std::nullopt;
    }
    if (c.literal(".") && !c.number(1, std::numeric_limits<std::size_t>::max())) {
        return std::nullopt;
    }
    const auto offset = utc_offset(c, true);
    if (!offset || !c.done()) {
        return std::nullopt;
    }
    return to_unix(*year, *month, *day, *hour, *minute, *second, *offset);
}

/// Whole seconds from a decimal string: `123`, `-5`, `1714730400.0` (fraction dropped).
std::optional<std::int64_t> parse_seconds_string(std::string_view s) {
    std::int64_t value = 0;
    const auto* end = s.data() + s.size();
    const auto [ptr, ec] = std::from_chars(s.data(), end, value);
    if (ec != std::errc{} || ptr == s.data()) {
        return std::nullopt;
    }
    std::string_view rest{ptr, static_cast<std::size_t>(end - ptr)};
    if (rest.empty()) {
        return value;
    }
    if (rest.front() != '.' || rest.size() < 2) {
        return std::nullopt;
    }
    rest.remove_prefix(1);
    for (const char c : rest) {
        if (!is_digit(c)) {
            return std::nullopt;
        }
    }
    return value;
}

/// A number or a numeric string, in whole seconds.
std::optional<std::int64_t> seconds_value(const Json& v) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return std::nullopt;
        }
        return static_cast<std::int64_t>(u);
    }
    if (v.is_number_integer()) {
        return v.get<std::int64_t>();
    }
    if (v.is_number_float()) {
        const double d = v.get<double>();
        // About 2^62: far beyond any date, and safely convertible to int64.
        if (!std::isfinite(d) || std::fabs(d) > 4.6e18) {
            return std::nullopt;
        }
        return static_cast<std::int64_t>(d);
    }
    if (v.is_string()) {
        return parse_seconds_string(v.get_ref<const std::string&>());
    }
    return std::nullopt;
}

std::optional<std::int64_t> expires_on_value(const Json& v) {
    if (auto seconds = seconds_value(v)) {
        return seconds;
    }
    if (!v.is_string()) {
        return std::nullopt;
    }
    const auto& s = v.get_ref<const std::string&>();
    if (auto t = parse_app_service_date(s)) {
        return t;
    }
    return parse_rfc3339(s);
}

const Json* member(const Json& object, const char* name) {
    const auto it = object.find(name);
    return it == object.end() ? nullptr : &*it;
}

std::string string_member(const Json& object, const char* name) {
    const Json* v = member(object, name);
    return v != nullptr && v->is_string() ? v->get<std::string>() : std::string{};
}

}  // namespace

std::optional<std::int64_t> rfc3339_to_unix(std::string_view text) {
    return parse_rfc3339(text);
}

/// Client ids are GUIDs (36 bytes); anything far longer is not echoed to pods.
constexpr std::size_t kMaxClientIdBytes = 128;

Result<Token> parse_token_response(std::string_view body, std::int64_t now_unix) {
    const Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
        return Errc::parse_error;
    }
    Token token;
    token.access_token = string_member(doc, "access_token");
    if (token.access_token.empty()) {
        return Errc::parse_error;
    }
    token.refresh_token = string_member(doc, "refresh_token");
    token.resource = string_member(doc, "resource");
    if (auto type = string_member(doc, "token_type"); !type.empty()) {
        token.token_type = std::move(type);
    }

    // Plain integers with sentinels (GCC 12 misreads optionals here as maybe-uninitialized):
    // a lifetime is never negative and an expiry never before 1970.
    std::int64_t expires_in = -1;
    if (const Json* v = member(doc, "expires_in")) {
        expires_in = seconds_value(*v).value_or(-1);
    }
    std::int64_t expires_on = 0;
    if (const Json* v = member(doc, "expires_on")) {
        expires_on = expires_on_value(*v).value_or(0);
    }
    if (expires_on <= 0) {
        if (expires_in < 0) {
            return Errc::parse_error;
        }
        expires_on = now_unix + expires_in;
    }
    token.expires_on = expires_on;
    token.expires_in =
        expires_in >= 0 ? expires_in : std::max<std::int64_t>(0, expires_on - now_unix);
    if (const Json* v = member(doc, "not_before")) {
        token.not_before = seconds_value(*v).value_or(0);
    }
    token.client_id = string_member(doc, "client_id");
    if (token.client_id.size() > kMaxClientIdBytes) {
        token.client_id.clear();  // not an identifier: the identity's own is used instead
    }
    if (const Json* v = member(doc, "ext_expires_in")) {
        const std::int64_t ext = seconds_value(*v).value_or(-1);
        token.ext_expires_on = ext >= 0 ? now_unix + ext : 0;
    }
    return token;
}

OAuthError parse_oauth_error(std::string_view body) {
    OAuthError out;
    const Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
        return out;
    }
    const Json* error = member(doc, "error");
    if (error != nullptr && error->is_object()) {
        out.error = string_member(*error, "code");
        out.description = string_member(*error, "message");
        return out;
    }
    out.error = string_member(doc, "error");
    out.description = string_member(doc, "error_description");
    return out;
}

}  // namespace nmid::cloud
