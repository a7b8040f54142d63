// Applying a flag's value to the config and showing it back (parse, --help defaults): the
// half of the flag table that is code; the table itself is flag_table.cpp.
#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "flag_table.hpp"
#include "values.hpp"

namespace nmid::config::detail {
namespace {

constexpr std::int64_t kNsPerMs = 1'000'000;
constexpr std::int64_t kNsPerSecond = 1'000'000'000;

std::string range_reason(std::int64_t min, std::int64_t max) {
    constexpr auto kNone = std::numeric_limits<std::int64_t>::max();
    if (max != kNone) {
        return "must be between " + std::to_string(min) + " and " + std::to_string(max);
    }
    if (min == 1) {
        return "must be greater than 0";
    }
    if (min == 0) {
        return "must not be negative";
    }
    return "must be at least " + std::to_string(min);
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return out;
}

std::string join(std::span<const std::string_view> words, std::string_view last_separator) {
    std::string out;
    for (std::size_t i = 0; i < words.size(); ++i) {
        if (i > 0) {
            out += i + 1 == words.size() ? last_separator : std::string_view{", "};
        }
        out += words[i];
    }
    return out;
}

[[noreturn]] void table_bug(const Flag& flag) {
    // A format/target mismatch in the table above; the table tests exercise every row.
    throw std::logic_error("flag table: --" + std::string(flag.name) +
                           " has a format its target cannot hold");
}

std::optional<std::string> apply_integer(const Flag& flag, const Target& target,
                                         std::string_view value) {
    const auto parsed = parse_int(value);
    if (!parsed) {
        std::string_view digits = value;
        if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) {
            digits.remove_prefix(1);
        }
        const bool all_digits =
            !digits.empty() &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
        return all_digits ? "out of range" : "not an integer";
    }
    if (*parsed < flag.min || *parsed > flag.max) {
        return range_reason(flag.min, flag.max);
    }
    const std::int64_t v = *parsed;
    if (auto* const* p = std::get_if<int*>(&target)) {
        if (v > std::numeric_limits<int>::max()) {
            return "out of range";
        }
        **p = static_cast<int>(v);
    } else if (auto* const* p = std::get_if<std::size_t*>(&target)) {
        **p = static_cast<std::size_t>(v);  // min >= 1 for every size flag
    } else if (auto* const* p = std::get_if<Seconds*>(&target)) {
        if (v > std::numeric_limits<int>::max()) {
            return "out of range";
        }
        **p = Seconds{v};
    } else {
        table_bug(flag);
    }
    return std::nullopt;
}

std::optional<std::string> apply_duration(const Flag& flag, const Target& target,
                                          std::string_view value) {
    auto parsed = parse_duration(value);
    if (!parsed.error.empty()) {
        return std::move(parsed.error);
    }
    const std::int64_t ns = parsed.value.count();
    if (ns < flag.min || ns > flag.max) {
        return range_reason(flag.min, flag.max);
    }
    if (auto* const* p = std::get_if<Millis*>(&target)) {
        if (ns % kNsPerMs != 0) {
            return "must be a whole number of milliseconds";
        }
        **p = Millis{ns / kNsPerMs};
    } else if (auto* const* p = std::get_if<Seconds*>(&target)) {
        if (ns % kNsPerSecond != 0) {
            return "must be a whole number of seconds";
        }
        **p = Seconds{ns / kNsPerSecond};
    } else {
        table_bug(flag);
    }
    return std::nullopt;
}

std::optional<std::string> apply_choice(const Flag& flag, const Target& target,
                                        std::string_view value) {
    const std::string folded = flag.fold_case ? lower(value) : std::string(value);
    const auto it = std::find(flag.choices.begin(), flag.choices.end(), folded);
    if (it == flag.choices.end()) {
        if (std::holds_alternative<OperationMode*>(target)) {
            // NMI's own fatal message, so that runbooks searching for it still match.
            return "operation mode " + folded + " not supported (want " +
                   join(flag.choices, " or ") + ")";
        }
        return "want one of " + join(flag.choices, ", ");
    }
    const auto index = static_cast<int>(it - flag.choices.begin());
    if (auto* const* p = std::get_if<std::string*>(&target)) {
        **p = *it;
    } else if (auto* const* p = std::get_if<OperationMode*>(&target)) {
        **p = static_cast<OperationMode>(index);
    } else if (auto* const* p = std::get_if<LogFormat*>(&target)) {
        **p = static_cast<LogFormat>(index);
    } else {
        table_bug(flag);
    }
    return std::nullopt;
}

template <class T>
T& target_as(const Flag& flag, const Target& target) {
    auto* const* p = std::get_if<T*>(&target);
    if (p == nullptr) {
        table_bug(flag);
    }
    return **p;
}

template <class T>
std::string show_value(const Flag& flag, const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
        return value ? "true" : "false";
    } else if constexpr (std::is_same_v<T, std::string>) {
        return value;
    } else if constexpr (std::is_same_v<T, double>) {
        std::array<char, 32> buffer{};
        const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
        return std::string(buffer.data(), result.ptr);
    } else if constexpr (std::is_same_v<T, Millis> || std::is_same_v<T, Seconds>) {
        if (flag.format == Format::integer) {
            return std::to_string(value.count());
        }
        return format_duration(value);
    } else if constexpr (std::is_same_v<T, OperationMode> || std::is_same_v<T, LogFormat>) {
        return std::string(flag.choices[static_cast<std::size_t>(value)]);
    } else {
        return std::to_string(value);
    }
}

}  // namespace

std::optional<std::string> apply(const Flag& flag, ParseState& state, std::string_view value) {
    if (flag.target == nullptr) {
        // Ignored flags still reject what their owner (klog) would reject syntactically.
        if (flag.format == Format::boolean && !parse_bool(value)) {
            return "not a boolean (true, false, 1 or 0)";
        }
        return std::nullopt;
    }
    const Target target = flag.target(state);
    switch (flag.format) {
        case Format::boolean: {
            const auto parsed = parse_bool(value);
            if (!parsed) {
                return "not a boolean (true, false, 1 or 0)";
            }
            target_as<bool>(flag, target) = *parsed;
            return std::nullopt;
        }
        case Format::text:
            target_as<std::string>(flag, target) = value;
            return std::nullopt;
        case Format::ip:
            if (!is_ip_address(value)) {
                return "not an IP address";
            }
            target_as<std::string>(flag, target) = value;
            return std::nullopt;
        case Format::endpoint: {
            std::string host;
            std::uint16_t port = 0;
            if (!value.empty() && !config::split_endpoint(value, host, port)) {
                return "not IP:PORT or [IPv6]:PORT (a literal address and a port), or "
                       "empty to turn it off";
            }
            target_as<std::string>(flag, target) = value;
            return std::nullopt;
        }
        case Format::port: {
            const auto parsed = parse_port(value);
            if (!parsed) {
                return "not a port number (0-65535)";
            }
            target_as<std::uint16_t>(flag, target) = *parsed;
            return std::nullopt;
        }
        case Format::integer:
            return apply_integer(flag, target, value);
        case Format::duration:
            return apply_duration(flag, target, value);
        case Format::real: {
            const auto parsed = parse_real(value);
            if (!parsed) {
                return "not a number";
            }
            if (*parsed <= 0) {
                return "must be greater than 0";
            }
            target_as<double>(flag, target) = *parsed;
            return std::nullopt;
        }
        case Format::choice:
            return apply_choice(flag, target, value);
    }
    table_bug(flag);
}

std::string show(const Flag& flag, ParseState& state) {
    if (flag.target == nullptr) {
        return {};
    }
    const Target target = flag.target(state);
    return std::visit(
        [&](auto alternative) -> std::string {
            if constexpr (std::is_same_v<decltype(alternative), std::monostate>) {
                return {};
            } else {
                return show_value(flag, *alternative);
            }
        },
        target);
}

}  // namespace nmid::config::detail
