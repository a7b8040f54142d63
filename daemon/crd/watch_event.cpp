#include "nmid/crd/watch_event.hpp"

#include <cstdint>
#include <utility>

namespace nmid {
namespace {
using json = nlohmann::json;
}  // namespace

Result<WatchEvent> parse_watch_event(std::string_view line) {
    json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
        return Errc::parse_error;
    }
    const auto type = doc.find("type");
    if (type == doc.end() || !type->is_string()) {
        return Errc::parse_error;
    }
    WatchEvent event;
    const auto& name = type->get_ref<const std::string&>();
    if (name == "ADDED") {
        event.type = WatchEventType::added;
    } else if (name == "MODIFIED") {
        event.type = WatchEventType::modified;
    } else if (name == "DELETED") {
        event.type = WatchEventType::deleted;
    } else if (name == "BOOKMARK") {
        event.type = WatchEventType::bookmark;
    } else if (name == "ERROR") {
        event.type = WatchEventType::error;
    } else {
        return Errc::parse_error;
    }
    const auto object = doc.find("object");
    if (object == doc.end() || !object->is_object()) {
        return Errc::parse_error;
    }
    event.object = std::move(*object);
    const json& obj = event.object;
    if (const auto md = obj.find("metadata"); md != obj.end() && !md->is_null()) {
        if (!md->is_object()) {
            return Errc::parse_error;
        }
        if (const auto rv = md->find("resourceVersion"); rv != md->end() && !rv->is_null()) {
            if (!rv->is_string()) {
                return Errc::parse_error;
            }
            event.resource_version = rv->get_ref<const std::string&>();
        }
    }
    if (event.type == WatchEventType::error) {
        if (const auto code = obj.find("code"); code != obj.end() && !code->is_null()) {
            if (!code->is_number_integer()) {
                return Errc::parse_error;
            }
            const auto v = code->get<std::int64_t>();
            if (v < 0 || v > 999) {
                return Errc::parse_error;
            }
            event.code = static_cast<int>(v);
        }
        for (auto [field, out] :
             {std::pair{"reason", &event.reason}, std::pair{"message", &event.message}}) {
            if (const auto it = obj.find(field); it != obj.end() && it->is_string()) {
                *out = it->get_ref<const std::string&>();
            }
        }
    }
    return event;
}

}  // namespace nmid
