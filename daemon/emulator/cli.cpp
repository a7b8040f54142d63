#include "nmid/emulator/cli.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cmath>
#include <optional>

#include "format.hpp"
#include "nmid/core/ascii.hpp"

namespace nmid::emulator {
namespace {

using std::chrono::nanoseconds;

constexpr auto kMaxDuration = std::chrono::hours{24 * 366};

template <class Int>
bool parse_int(std::string_view text, Int& out) {
    if (text.empty()) {
        return false;
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

std::optional<std::string_view> strip_prefix(std::string_view text, std::string_view prefix) {
    if (!text.starts_with(prefix)) {
        return std::nullopt;
    }
    return text.substr(prefix.size());
}

}  // namespace

Result<nanoseconds> parse_duration(std::string_view text) {
    if (text == "0") {
        return nanoseconds{0};
    }
    if (text.empty()) {
        return Errc::parse_error;
    }
    // Go's units; "ms" must be tried before "m", and "us"/"µs" before "s".
    static constexpr std::pair<std::string_view, double> kUnits[] = {
        {"ns", 1.0}, {"us", 1e3}, {"\xC2\xB5s", 1e3}, {"ms", 1e6},
        {"s", 1e9},  {"m", 60e9}, {"h", 3600e9},
    };
    double total = 0;
    while (!text.empty()) {
        std::size_t digits = 0;
        while (digits < text.size() &&
               ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
            ++digits;
        }
        auto number = text.substr(0, digits);
        text.remove_prefix(digits);
        if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1) {
            return Errc::parse_error;
        }
        auto dot = number.find('.');
        std::uint64_t whole = 0;
        if (dot != 0 && !parse_int(number.substr(0, dot), whole)) {
            return Errc::parse_error;
        }
        double value = static_cast<double>(whole);
        if (dot != std::string_view::npos) {
            double scale = 0.1;
            for (char c : number.substr(dot + 1)) {
                value += (c - '0') * scale;
                scale /= 10;
            }
        }
        const std::pair<std::string_view, double>* unit = nullptr;
        for (const auto& candidate : kUnits) {
            if (text.starts_with(candidate.first)) {
                unit = &candidate;
                break;
            }
        }
        if (unit == nullptr) {
            return Errc::parse_error;
        }
        text.remove_prefix(unit->first.size());
        total += value * unit->second;
        if (total > static_cast<double>(nanoseconds{kMaxDuration}.count())) {
            return Errc::parse_error;
        }
    }
    return nanoseconds{std::llround(total)};
}

Result<Identity> parse_identity(std::string_view text) {
    std::string_view fields[3];
    std::size_t count = 0;
    while (true) {
        if (count == 3) {
            return Errc::parse_error;
        }
        auto colon = text.find(':');
        fields[count++] = text.substr(0, colon);
        if (colon == std::string_view::npos) {
            break;
        }
        text.remove_prefix(colon + 1);
    }
    if (fields[0].empty()) {
        return Errc::parse_error;
    }
    return Identity{.client_id = std::string{fields[0]},
                    .resource_id = std::string{fields[1]},
                    .object_id = std::string{fields[2]}};
}

Result<Fault> parse_fault_spec(std::string_view text) {
    if (text.empty()) {
        return Errc::parse_error;
    }
    Fault fault;
    bool kind_set = false;
    bool retry_after_set = false;
    auto set_kind = [&]() {
        if (kind_set) {
            return false;
        }
        kind_set = true;
        return true;
    };
    while (true) {
        auto colon = text.find(':');
        auto part = text.substr(0, colon);
        int status = 0;
        if (parse_int(part, status)) {
            if (status < 100 || status > 599 || !set_kind()) {
                return Errc::parse_error;
            }
            fault.status = status;
        } else if (part == "ok") {
            if (!set_kind()) {
                return Errc::parse_error;
            }
        } else if (part == "hang") {
            if (!set_kind()) {
                return Errc::parse_error;
            }
            fault.hang = true;
        } else if (part == "reset") {
            if (!set_kind()) {
                return Errc::parse_error;
            }
            fault.reset = true;
        } else if (auto seconds = strip_prefix(part, "retry-after=")) {
            std::int64_t n = 0;
            if (retry_after_set || !parse_int(*seconds, n) || n < 0 || n > 86'400) {
                return Errc::parse_error;
            }
            retry_after_set = true;
            fault.retry_after = std::chrono::seconds{n};
        } else if (auto duration = strip_prefix(part, "latency=")) {
            auto d = parse_duration(*duration);
            if (!d || fault.latency != Millis{0}) {
                return Errc::parse_error;
            }
            fault.latency = std::chrono::duration_cast<Millis>(*d);
        } else {
            return Errc::parse_error;
        }
        if (colon == std::string_view::npos) {
            break;
        }
        text.remove_prefix(colon + 1);
    }
    if (fault.status == 429 && !retry_after_set) {
        fault.retry_after = std::chrono::seconds{1};
    }
    return fault;
}

Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text) {
    std::string_view host;
    std::string_view port;
    if (text.starts_with('[')) {
        auto close = text.find("]:");
        if (close == std::string_view::npos) {
            return Errc::parse_error;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return Errc::parse_error;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return Errc::parse_error;  // IPv6 needs brackets
        }
    }
    std::uint16_t number = 0;
    if (!parse_int(port, number)) {
        return Errc::parse_error;
    }
    if (host == "localhost") {
        host = "127.0.0.1";
    }
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(std::string{host}, ec);
    if (ec) {
        return Errc::parse_error;
    }
    return std::pair{address.to_string(), number};
}

Result<CommandLine> parse_command_line(std::span<const std::string_view> args, std::string& error) {
    CommandLine result;
    auto fail = [&](std::string message) -> Result<CommandLine> {
        error = std::move(message);
        return Errc::invalid_config;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view flag = args[i];
        std::optional<std::string_view> inline_value;
        if (flag.starts_with("--")) {
            if (auto eq = flag.find('='); eq != std::string_view::npos) {
                inline_value = flag.substr(eq + 1);
                flag = flag.substr(0, eq);
            }
        }
        if (flag == "--help" || flag == "-h") {
            result.help = true;
            continue;
        }
        static constexpr std::string_view kValued[] = {"--listen",          "--identity",
                                                       "--system-assigned", "--token-lifetime",
                                                       "--latency",         "--fault"};
        if (std::find(std::begin(kValued), std::end(kValued), flag) == std::end(kValued)) {
            return fail("unknown flag " + std::string{flag} + " (see --help)");
        }
        std::string_view value;
        if (inline_value) {
            value = *inline_value;
        } else if (i + 1 < args.size()) {
            value = args[++i];
        } else {
            return fail("missing value for " + std::string{flag});
        }
        auto bad = [&](std::string_view expected) {
            return fail(std::string{flag} + ": expected " + std::string{expected} + ", got '" +
                        std::string{value} + "'");
        };
        if (flag == "--listen") {
            auto listen = parse_listen(value);
            if (!listen) {
                return bad("HOST:PORT with a numeric host");
            }
            std::tie(result.host, result.port) = *listen;
        } else if (flag == "--identity" || flag == "--system-assigned") {
            auto identity = parse_identity(value);
            if (!identity) {
                return bad("CLIENT_ID[:RESOURCE_ID[:OBJECT_ID]]");
            }
            auto& settings = result.settings;
            auto same = [&](const Identity& other) {
                return iequals(other.client_id, identity->client_id);
            };
            if (std::any_of(settings.user_assigned.begin(), settings.user_assigned.end(), same) ||
                (settings.system_assigned && same(*settings.system_assigned))) {
                return fail(std::string{flag} + ": client ID " + identity->client_id +
                            " given twice");
            }
            if (flag == "--identity") {
                settings.user_assigned.push_back(std::move(*identity));
            } else if (settings.system_assigned) {
                return fail("--system-assigned given twice");
            } else {
                settings.system_assigned = std::move(*identity);
            }
        } else if (flag == "--token-lifetime") {
            auto d = parse_duration(value);
            if (!d || *d < std::chrono::seconds{1}) {
                return bad("a duration of at least 1s such as 24h or 90m");
            }
            result.settings.token_lifetime = std::chrono::duration_cast<std::chrono::seconds>(*d);
        } else if (flag == "--latency") {
            auto d = parse_duration(value);
            if (!d) {
                return bad("a duration such as 0, 50ms or 1.5s");
            }
            result.settings.latency = std::chrono::duration_cast<Millis>(*d);
        } else {
            auto fault = parse_fault_spec(value);
            if (!fault) {
                return bad("STATUS|ok|hang|reset[:retry-after=SECONDS][:latency=DURATION]");
            }
            result.settings.faults.push_back(std::move(*fault));
        }
    }
    return result;
}

std::string_view usage() {
    return R"(Usage: imds-emulator [flags]

Emulates the Azure Instance Metadata Service (IMDS) token endpoint for tests, benchmarks
and local development. Prints "listening on HOST:PORT" once bound. SIGINT/SIGTERM stop it.

Flags:
  --listen HOST:PORT         address to bind (default 127.0.0.1:0, an OS-chosen port;
                             IPv6 as [::1]:PORT)
  --identity CLIENT_ID[:RESOURCE_ID[:OBJECT_ID]]
                             a user-assigned identity attached to the VM (repeatable);
                             OBJECT_ID defaults to a stable ID derived from CLIENT_ID
  --system-assigned CLIENT_ID[:RESOURCE_ID[:OBJECT_ID]]
                             the system-assigned identity, used when a request names none
  --token-lifetime DURATION  token lifetime (default 24h); durations as in Go: 300ms, 1.5s,
                             2m, 1h30m
  --latency DURATION         delay added to every token answer (default 0)
  --fault SPEC               scripted answer for the next token request (repeatable, in
                             order; normal answers afterwards). SPEC is ':'-separated:
                             STATUS (e.g. 404, 410, 429, 500), ok, hang (hold 10 min, then
                             reset), reset (abort the connection), retry-after=SECONDS,
                             latency=DURATION. A 429 sends Retry-After: 1 unless given.
                             Examples: --fault 500 --fault 429:retry-after=2 --fault hang
  --help                     this text

Endpoints:
  GET  /metadata/identity/oauth2/token   IMDS token contract (Metadata: true required)
  GET  /metadata/instance[/PATH]         sample instance metadata (format=text supported)
  POST /_emulator/faults                 {"sequence":[{"status":429,"retry_after":2},
                                          {"status":500},{"hang":true},{"reset":true},
                                          {"latency_ms":300},{"status":200,"body":"x"}],
                                          "latency_ms":0}  replaces the fault sequence
  POST /_emulator/reset                  clears faults and counters
  GET  /_emulator/stats                  counters as JSON
)";
}

}  // namespace nmid::emulator
