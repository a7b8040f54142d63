#pragma once

// Command line of the `imds-emulator` executable (pure parsing, no I/O).

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"
#include "nmid/emulator/emulator.hpp"

namespace nmid::emulator {

struct CommandLine {
    std::string host{"127.0.0.1"};  ///< numeric address (IPv6 without brackets)
    std::uint16_t port = 0;
    EmulatorSettings settings{};
    bool help = false;
};

/// Go-style duration: one or more `<number><unit>` terms, units ns, us, ms, s, m, h, with an
/// optional fraction ("1h30m", "1.5s", "300ms"); "0" alone is allowed. Negative values are not.
/// Errors: Errc::parse_error.
[[nodiscard]] Result<std::chrono::nanoseconds> parse_duration(std::string_view text);

/// `CLIENT_ID[:RESOURCE_ID[:OBJECT_ID]]` (ARM IDs contain no ':'). Errors: Errc::parse_error.
[[nodiscard]] Result<Identity> parse_identity(std::string_view text);

/// A `--fault` spec: ':'-separated parts, one of STATUS (100-599), `ok`, `hang`, `reset`,
/// plus options `retry-after=SECONDS` and `latency=DURATION`; a lone `latency=D` delays a
/// normal answer. Examples: `500`, `429:retry-after=2`, `hang`, `reset`, `503:latency=2s`.
/// A 429 without retry-after gets 1 s. Errors: Errc::parse_error.
[[nodiscard]] Result<Fault> parse_fault_spec(std::string_view text);

/// `HOST:PORT`, `[V6]:PORT`, or `localhost:PORT`. Errors: Errc::parse_error.
[[nodiscard]] Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text);

/// Parses the arguments after argv[0]; accepts `--flag value` and `--flag=value`.
/// Errors: Errc::invalid_config, with a one-line reason in `error`.
[[nodiscard]] Result<CommandLine> parse_command_line(std::span<const std::string_view> args,
                                                     std::string& error);

/// Multi-line `--help` text.
[[nodiscard]] std::string_view usage();

}  // namespace nmid::emulator
