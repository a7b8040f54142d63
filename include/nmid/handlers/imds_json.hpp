#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "nmid/core/json.hpp"
#include "nmid/model/token.hpp"

namespace nmid::handlers {

/// IMDS/NMI success body: every value a string, NMI's field order
/// (access_token, refresh_token, expires_in, expires_on, not_before, resource, token_type),
/// then IMDS 2023-07-01's `client_id` (when known) and `ext_expires_in` (when the upstream
/// sent one). `expires_in` and `ext_expires_in` are the time left at `now_unix`, never the
/// original lifetimes; `resource` echoes the request exactly (SDKs key their caches on it).
void append_token_json(std::string& out, const Token& token, std::string_view resource,
                       std::int64_t now_unix);
[[nodiscard]] std::string token_json(const Token& token, std::string_view resource,
                                     std::int64_t now_unix);

/// The same bytes for a cached token, from a per-thread memo of the token's rendered body
/// (everything but `expires_in`), so a cache hit copies instead of escaping ~1.5 KiB.
/// The memo holds a few recently served tokens alive until their slots are reused.
void append_token_json(std::string& out, const TokenPtr& token, std::string_view resource,
                       std::int64_t now_unix);
[[nodiscard]] std::string token_json(const TokenPtr& token, std::string_view resource,
                                     std::int64_t now_unix);

}  // namespace nmid::handlers
