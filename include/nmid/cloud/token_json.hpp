#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"
#include "nmid/model/token.hpp"

namespace nmid::cloud {

/// Parses an IMDS or AAD v1 token response. Pure, never throws.
/// `access_token` must be a non-empty string. `expires_on` may be a number, a numeric string
/// (a fractional part is dropped: `"1714730400.0"`), or a date string (`"11/23/2026 10:00:00
/// +00:00"` with optional ` AM`/` PM` as App Service sends, or RFC 3339); when absent or
/// unparsable it is computed from `expires_in` + `now_unix`. `expires_in` and `not_before`
/// are numbers or numeric strings (`expires_in` defaults to `expires_on - now_unix`,
/// `not_before` to 0). Missing `token_type` is "Bearer". `client_id` (a string) is kept as
/// sent; `ext_expires_in` (number or numeric string) becomes `ext_expires_on` = now + it.
/// Errors: Errc::parse_error (not a JSON object, no access_token, no usable expiry).
[[nodiscard]] Result<Token> parse_token_response(std::string_view body, std::int64_t now_unix);

/// IMDS/AAD error body fields. Flat OAuth shape `{"error":..,"error_description":..}`, or the
/// nested `{"error":{"code":..,"message":..}}` of newer IMDS endpoints.
struct OAuthError {
    std::string error{};
    std::string description{};
};

/// Fields of an error body; empty strings when absent or unparsable. Pure, never throws.
[[nodiscard]] OAuthError parse_oauth_error(std::string_view body);

/// Unix seconds of an RFC 3339 time (`2026-11-23T10:00:00Z`, fractions and offsets allowed),
/// as Kubernetes writes `status.expirationTimestamp`; nullopt when malformed. Pure.
[[nodiscard]] std::optional<std::int64_t> rfc3339_to_unix(std::string_view text);

}  // namespace nmid::cloud
