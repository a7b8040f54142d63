#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"

namespace nmid {

/// `type` of a watch event.
enum class WatchEventType { added, modified, deleted, bookmark, error };

/// One line of a watch stream, `{"type":...,"object":{...}}`.
struct WatchEvent {
    WatchEventType type = WatchEventType::added;
    nlohmann::json object{};         ///< the object (a Status for ERROR)
    std::string resource_version{};  ///< object.metadata.resourceVersion, "" when absent
    int code = 0;                    ///< ERROR: Status `code` (410 = Expired/Gone), else 0
    std::string reason{};            ///< ERROR: Status `reason`, e.g. "Expired"
    std::string message{};           ///< ERROR: Status `message`
};

/// Parses one watch line (surrounding whitespace allowed). Pure; never throws.
/// Errors: Errc::parse_error (not JSON, not an object, `type` missing or unknown, `object`
/// not an object, a non-string resourceVersion, an ERROR whose `code` is not an integer).
[[nodiscard]] Result<WatchEvent> parse_watch_event(std::string_view line);

}  // namespace nmid
