#pragma once

#include <string>

#include "nmid/core/clock.hpp"

namespace nmid {

/// RFC 3339 in UTC with whole seconds, as Kubernetes writes times: "2026-12-06T17:00:00Z".
[[nodiscard]] std::string format_rfc3339(WallTime t);

}  // namespace nmid
