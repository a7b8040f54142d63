#pragma once

#include <string>
#include <string_view>

namespace nmid {

/// Appends `s` JSON-escaped (without quotes) to `out`: `"`, `\\` and control characters;
/// other bytes, UTF-8 included, are copied as they are.
void append_json_escaped(std::string& out, std::string_view s);

/// `{"error":"<error>","error_description":"<description>"}` (IMDS's flat OAuth shape).
[[nodiscard]] std::string error_json(std::string_view error, std::string_view description);

}  // namespace nmid
