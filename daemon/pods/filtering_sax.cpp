#include "filtering_sax.hpp"

namespace nmid::pods_detail {

bool wanted(Ctx ctx, std::string_view key) {
    switch (ctx) {
        case Ctx::root:
            return key == "kind" || key == "items" || key == "message" || key == "metadata";
        case Ctx::list_metadata:
            return key == "resourceVersion";
        case Ctx::event:
            return key == "type" || key == "object";
        case Ctx::item:
            // code/message: the Status object of a watch ERROR event.
            return key == "kind" || key == "metadata" || key == "spec" || key == "status" ||
                   key == "code" || key == "message";
        case Ctx::metadata:
            return key == "name" || key == "namespace" || key == "uid" || key == "labels" ||
                   key == "deletionTimestamp" || key == "ownerReferences" ||
                   key == "resourceVersion";
        case Ctx::spec:
            return key == "serviceAccountName" || key == "serviceAccount" || key == "hostNetwork" ||
                   key == "volumes";
        case Ctx::status:
            return key == "phase" || key == "podIP" || key == "podIPs" ||
                   key == "containerStatuses";
        case Ctx::container_status:
            return key == "state";
        case Ctx::container_state:
            return key == "terminated";
        case Ctx::presence:
            return false;
        case Ctx::items:
        case Ctx::container_statuses:
        case Ctx::all:
            return true;
    }
    return true;
}

Ctx child_ctx(Ctx parent, std::string_view key) {
    switch (parent) {
        case Ctx::root:
            if (key == "metadata") {
                return Ctx::list_metadata;
            }
            return key == "items" ? Ctx::items : Ctx::all;
        case Ctx::event:
            return key == "object" ? Ctx::item : Ctx::all;
        case Ctx::items:
            return Ctx::item;
        case Ctx::item:
            if (key == "metadata") {
                return Ctx::metadata;
            }
            if (key == "spec") {
                return Ctx::spec;
            }
            if (key == "status") {
                return Ctx::status;
            }
            return Ctx::all;
        case Ctx::status:
            return key == "containerStatuses" ? Ctx::container_statuses : Ctx::all;
        case Ctx::container_statuses:
            return Ctx::container_status;
        case Ctx::container_status:
            return key == "state" ? Ctx::container_state : Ctx::all;
        case Ctx::container_state:
            return key == "terminated" ? Ctx::presence : Ctx::all;
        case Ctx::presence:
            return Ctx::presence;
        default:
            return Ctx::all;
    }
}

std::string_view type_name(const Json& j) {
    switch (j.type()) {
        case Json::value_t::null:
            return "null";
        case Json::value_t::object:
            return "object";
        case Json::value_t::array:
            return "array";
        case Json::value_t::string:
            return "string";
        case Json::value_t::boolean:
            return "boolean";
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned:
        case Json::value_t::number_float:
            return "number";
        default:
            return "other";
    }
}

std::string one_line(std::string s) {
    for (char& c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            c = ' ';
        }
    }
    return s;
}

}  // namespace nmid::pods_detail
