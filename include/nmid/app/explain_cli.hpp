#pragma once

// `nmid explain --ip X | --pod ns/name [--json] [--debug-address IP:PORT]`: asks the running
// daemon's debug listener why a pod gets its answer, and prints the report.

#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace nmid::app {

struct ExplainArgs {
    std::string query;  ///< the /debug/explain query string, percent-encoded
    std::string host{"127.0.0.1"};
    std::uint16_t port = 8086;
    bool help = false;
};

/// Pure: the arguments after `explain`, or the error text. --ip and --pod exclude each other;
/// --pod is `namespace/name`; --debug-address as the daemon's flag (default 127.0.0.1:8086).
[[nodiscard]] std::variant<ExplainArgs, std::string> parse_explain_args(
    std::span<const std::string_view> args);

[[nodiscard]] std::string explain_usage();

/// Runs the command: 0 when the daemon answered 200 (the report is on stdout), 1 when it
/// refused or could not be reached (the reason on stderr), 2 for bad arguments. Waits at most
/// 5 seconds.
int explain_main(std::span<const std::string_view> args);

}  // namespace nmid::app
