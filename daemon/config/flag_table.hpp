#pragma once

// The one flag table: parsing, help text and tests all read it, so they cannot drift apart.

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "nmid/config/config.hpp"

namespace nmid::config::detail {

/// Everything a flag can write: the config, plus the two flags that are actions.
struct ParseState {
    Config config;
    bool help = false;
    bool version = false;
};

/// How a flag's value is spelled and checked.
enum class Format {
    boolean,   ///< Go ParseBool; the flag alone means true
    text,      ///< any string, empty included
    ip,        ///< IPv4 or IPv6 address
    port,      ///< digits only, 0..65535
    endpoint,  ///< "IP:PORT" or "[IPv6]:PORT" (split_endpoint), or "" (off)
    integer,   ///< decimal, within [min, max]
    duration,  ///< Go duration, nanoseconds within [min, max]
    real,      ///< finite decimal number > 0
    choice,    ///< one of `choices`
};

/// Where a flag's value goes. `std::monostate`: accepted and ignored.
using Target = std::variant<std::monostate, bool*, std::string*, std::uint16_t*, int*, std::size_t*,
                            double*, Millis*, Seconds*, OperationMode*, LogFormat*>;

struct Flag {
    std::string_view name;
    char shorthand = '\0';
    FlagGroup group = FlagGroup::nmi;
    Format format = Format::text;
    std::string_view value_name;
    std::string_view help;
    Target (*target)(ParseState&) = nullptr;  ///< nullptr: accepted for compatibility, ignored
    std::int64_t min = std::numeric_limits<std::int64_t>::min();  ///< integer, duration (ns)
    std::int64_t max = std::numeric_limits<std::int64_t>::max();
    std::span<const std::string_view> choices{};  ///< enum targets: index == enumerator value
    bool fold_case = false;                       ///< choice matched after lower-casing
    std::string_view default_note{};              ///< shown instead of the computed default
};

[[nodiscard]] std::span<const Flag> flag_table();

/// The table's parts (flag_table_nmi.cpp, flag_table_nmid.cpp, flag_table_workload.cpp), joined by
/// flag_table().
[[nodiscard]] std::span<const Flag> nmi_flags();
[[nodiscard]] std::span<const Flag> nmid_flags();
[[nodiscard]] std::span<const Flag> workload_flags();

/// By long name (without dashes); nullptr when unknown.
[[nodiscard]] const Flag* find_flag(std::string_view name);

/// By single-letter alias; nullptr when none.
[[nodiscard]] const Flag* find_shorthand(char letter);

/// Checks `value` and stores it. Returns the reason (for the error line) when it is invalid.
[[nodiscard]] std::optional<std::string> apply(const Flag& flag, ParseState& state,
                                               std::string_view value);

/// The flag's current value in `state`, spelled so that `apply` accepts it back.
/// Empty for ignored flags.
[[nodiscard]] std::string show(const Flag& flag, ParseState& state);

}  // namespace nmid::config::detail
