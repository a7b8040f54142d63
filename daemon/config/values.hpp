#pragma once

// Pure parsers for flag values. No exceptions, no locale.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nmid::config::detail {

/// Go's strconv.ParseBool: 1 t T TRUE true True 0 f F FALSE false False.
[[nodiscard]] std::optional<bool> parse_bool(std::string_view text);

/// Decimal digits only (no sign, no spaces), 0..65535.
[[nodiscard]] std::optional<std::uint16_t> parse_port(std::string_view text);

/// Optional sign and decimal digits, within int64.
[[nodiscard]] std::optional<std::int64_t> parse_int(std::string_view text);

/// A finite decimal floating-point number.
[[nodiscard]] std::optional<double> parse_real(std::string_view text);

/// IPv4 dotted quad or IPv6 text (inet_pton).
[[nodiscard]] bool is_ip_address(std::string_view text);

struct ParsedDuration {
    std::chrono::nanoseconds value{};
    std::string error;  ///< empty on success; otherwise the reason, for the error line
};

/// Go's time.ParseDuration: "0", or a signed sequence of decimal numbers (with optional
/// fraction) each followed by a unit (ns, us, µs, ms, s, m, h), e.g. "1m30s", "1.5h".
[[nodiscard]] ParsedDuration parse_duration(std::string_view text);

/// Shortest Go-parseable form built from whole units: "0s", "500ms", "1m30s", "2h".
[[nodiscard]] std::string format_duration(std::chrono::nanoseconds value);

}  // namespace nmid::config::detail
