#pragma once

// Pure helpers of the emulator: query parsing, JSON and JWT text. No I/O, no clock.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nmid/emulator/emulator.hpp"

namespace nmid::emulator::detail {

/// The token request's query parameters the emulator looks at, percent-decoded.
/// A parameter given twice keeps its first value; an empty value counts as absent.
struct TokenQuery {
    std::optional<std::string> api_version;
    std::optional<std::string> resource;
    std::optional<std::string> client_id;
    std::optional<std::string> object_id;
    std::optional<std::string> msi_res_id;
    std::optional<std::string> mi_res_id;
    std::optional<std::string> format;
};

[[nodiscard]] TokenQuery parse_query(std::string_view query);
/// `%XX` and `+` decoding; malformed escapes are kept literally.
[[nodiscard]] std::string url_decode(std::string_view text);

void append_json_string(std::string& out, std::string_view text);
void append_base64url(std::string& out, std::string_view bytes);

/// A UUID-shaped (version 4 layout) ID derived from `client_id`, the same on every run.
[[nodiscard]] std::string derive_object_id(std::string_view client_id);

struct TokenInput {
    const Identity& identity;
    std::string_view resource;
    std::int64_t now_unix = 0;
    std::chrono::seconds lifetime{0};
    std::uint64_t jti = 0;
};

/// JWT-shaped access token: header.claims.signature, each base64url without padding.
[[nodiscard]] std::string make_access_token(const TokenInput& input);
/// IMDS's success body; every value is a JSON string.
[[nodiscard]] std::string make_token_body(const TokenInput& input);
/// The `error` / `error_description` pair used for a scripted fault status.
[[nodiscard]] std::pair<std::string_view, std::string_view> fault_error(int status);

struct FaultsUpdate {
    std::vector<Fault> sequence;
    std::optional<Millis> latency;
};

/// Body of `POST /_emulator/faults`: `{"sequence":[...], "latency_ms": 0}`; `sequence` is
/// required, `latency_ms` optional. Errors: Errc::parse_error, reason in `error`.
[[nodiscard]] Result<FaultsUpdate> parse_faults_update(std::string_view body, std::string& error);
[[nodiscard]] std::string stats_json(const EmulatorStats& stats);

/// A realistic `/metadata/instance` document, serialised once at start-up.
[[nodiscard]] std::string sample_instance_json();

}  // namespace nmid::emulator::detail
