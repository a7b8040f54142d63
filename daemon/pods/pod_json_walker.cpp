#include "pod_json_walker.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <utility>

namespace nmid::pods_detail {

Result<PodList> Walker::walk(const Json& root) {
    if (!root.is_object()) {
        return fail("",
                    std::string{"expected a PodList object, got "} + std::string{type_name(root)});
    }
    if (const Json* kind = field(root, "kind")) {
        if (!kind->is_string()) {
            return fail("kind", expected("string", *kind));
        }
        const auto& k = kind->get_ref<const std::string&>();
        if (k == "Status") {
            const Json* message = field(root, "message");
            return fail("", "got a Status object: " + (message != nullptr && message->is_string()
                                                           ? message->get<std::string>()
                                                           : std::string{"(no message)"}));
        }
        if (k != "PodList" && k != "List") {
            return fail("kind", "expected PodList or List, got " + k);
        }
    }
    const auto items = root.find("items");
    if (items == root.end()) {
        return fail("items", "missing");
    }
    PodList list;
    if (items->is_null()) {
        return list;  // kubelet on a node without pods
    }
    if (!items->is_array()) {
        return fail("items", expected("array", *items));
    }
    list.pods.reserve(items->size());
    std::size_t index = 0;
    for (const Json& item : *items) {
        item_ = "items[" + std::to_string(index++) + "]";
        PodInfo pod;
        bool is_pod = true;
        if (auto r = parse_item(item, pod, is_pod); !r) {
            return r.error();
        }
        if (is_pod) {
            list.pods.push_back(std::move(pod));
        }
    }
    return list;
}

Result<std::string> Walker::list_resource_version(const Json& root) {
    item_.clear();
    pod_name_.clear();
    std::string rv;
    if (const Json* meta = field(root, "metadata")) {
        if (!meta->is_object()) {
            return fail("metadata", expected("object", *meta));
        }
        NMID_PODS_TRY(opt_string(*meta, "resourceVersion", "metadata.resourceVersion", rv));
    }
    return rv;
}

Result<PodWatchEvent> Walker::event(const Json& root) {
    item_.clear();
    pod_name_.clear();
    if (!root.is_object()) {
        return fail(
            "", std::string{"expected a watch event object, got "} + std::string{type_name(root)});
    }
    const Json* type = field(root, "type");
    if (type == nullptr) {
        return fail("type", "missing");
    }
    if (!type->is_string()) {
        return fail("type", expected("string", *type));
    }
    PodWatchEvent ev;
    const auto& t = type->get_ref<const std::string&>();
    if (t == "ADDED") {
        ev.type = PodWatchEvent::Type::added;
    } else if (t == "MODIFIED") {
        ev.type = PodWatchEvent::Type::modified;
    } else if (t == "DELETED") {
        ev.type = PodWatchEvent::Type::deleted;
    } else if (t == "BOOKMARK") {
        ev.type = PodWatchEvent::Type::bookmark;
    } else if (t == "ERROR") {
        ev.type = PodWatchEvent::Type::error;
    } else {
        return fail("type", "unknown watch event type " + t);
    }
    const Json* object = field(root, "object");
    if (object == nullptr) {
        return fail("object", "missing");
    }
    if (!object->is_object()) {
        return fail("object", expected("object", *object));
    }
    item_ = "object";
    if (ev.type == PodWatchEvent::Type::error) {
        if (const Json* code = field(*object, "code")) {
            if (!code->is_number_integer()) {
                return fail("code", expected("integer", *code));
            }
            const auto v = code->is_number_unsigned()
                               ? static_cast<std::int64_t>(
                                     std::min<std::uint64_t>(code->get<std::uint64_t>(), 1000))
                               : code->get<std::int64_t>();
            ev.status_code = v >= 0 && v < 1000 ? static_cast<int>(v) : 0;
        }
        NMID_PODS_TRY(opt_string(*object, "message", "message", ev.message));
        ev.message = one_line(std::move(ev.message));
        return ev;
    }
    if (const Json* metadata = field(*object, "metadata")) {
        if (!metadata->is_object()) {
            return fail("metadata", expected("object", *metadata));
        }
        NMID_PODS_TRY(opt_string(*metadata, "resourceVersion", "metadata.resourceVersion",
                                 ev.resource_version));
    }
    if (ev.type == PodWatchEvent::Type::bookmark) {
        return ev;  // only the resourceVersion of a bookmark means anything
    }
    bool is_pod = true;
    NMID_PODS_TRY(parse_item(*object, ev.pod, is_pod));
    if (!is_pod) {
        return fail("kind", "expected Pod");
    }
    return ev;
}

const Json* Walker::field(const Json& obj, std::string_view key) {
    const auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string Walker::expected(std::string_view what, const Json& got) {
    return "expected " + std::string{what} + ", got " + std::string{type_name(got)};
}

boost::system::error_code Walker::fail(std::string_view path, const std::string& what) {
    if (detail_ != nullptr) {
        std::string line = item_;
        if (!pod_name_.empty()) {
            line += " (" + pod_name_ + ")";
        }
        if (!path.empty()) {
            line += line.empty() ? "" : ": ";
            line += path;
        }
        line += line.empty() ? "" : ": ";
        line += what;
        *detail_ = one_line(std::move(line));
    }
    return Errc::parse_error;
}

Result<void> Walker::opt_string(const Json& obj, std::string_view key, std::string_view path,
                                std::string& out) {
    if (const Json* v = field(obj, key)) {
        if (!v->is_string()) {
            return fail(path, expected("string", *v));
        }
        out = v->get<std::string>();
    }
    return {};
}

Result<void> Walker::add_ip(const std::string& text, std::string_view path, PodInfo& pod) {
    if (text.empty()) {
        return {};
    }
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(text, ec);
    if (ec) {
        return fail(path, "invalid IP address '" + text + "'");
    }
    if (addr.is_v6()) {
        auto v6 = addr.to_v6();
        addr = v6.is_v4_mapped()
                   ? boost::asio::ip::address{boost::asio::ip::make_address_v4(
                         boost::asio::ip::v4_mapped, v6)}
                   : boost::asio::ip::address{boost::asio::ip::address_v6{v6.to_bytes()}};
    }
    std::string canonical = addr.to_string();
    if (std::find(pod.ips.begin(), pod.ips.end(), canonical) == pod.ips.end()) {
        pod.ips.push_back(std::move(canonical));
    }
    return {};
}

}  // namespace nmid::pods_detail
