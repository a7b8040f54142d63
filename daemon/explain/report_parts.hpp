#pragma once

// Pieces of the report shared by the text and JSON forms. Private to the explain module.

#include <chrono>
#include <optional>
#include <string>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/model/crd.hpp"
#include "nmid/token/token_cache.hpp"
#include "nmid/workload/decision.hpp"

namespace nmid::explain::detail {

/// "read 1.2s ago" / "not read yet".
[[nodiscard]] std::string age_text(const std::optional<std::chrono::milliseconds>& age);
/// "managed mode, namespaced" / "standard mode, MIC namespace \"default\"".
[[nodiscard]] std::string mode_text(const IdentitySettings& settings);
/// "AzureIdentity ns/name (type 0, client 1234##### REDACTED #####abcd)".
[[nodiscard]] std::string identity_text(const AzureIdentity& id);
/// RFC 3339 UTC ("2026-12-06T17:00:00Z"), "never" for the epoch.
[[nodiscard]] std::string rfc3339(WallTime t);
/// rfc3339(t) plus " (in 59m58s)" or " (2s ago)" relative to `now`.
[[nodiscard]] std::string time_text(WallTime t, WallTime now);
/// "none", or the Errc name with the upstream status ("upstream_refused, status 403").
[[nodiscard]] std::string error_text(const CacheEntryInfo& e);

/// The workload Denial's enumerator name ("account_unknown", ...).
[[nodiscard]] std::string denial_name(workload::Denial denial);

}  // namespace nmid::explain::detail
