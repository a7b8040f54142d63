#include "nmid/pods/pod_list_json.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "nmid/core/ascii.hpp"

namespace nmid {
namespace {

using Json = nlohmann::json;

// Returns the error of a failed Result<void> step from the enclosing function.
#define NMID_PODS_TRY(expr)          \
    do {                             \
        if (auto r_ = (expr); !r_) { \
            return r_.error();       \
        }                            \
    } while (false)

// Where a container sits in a pod list; decides which keys are worth keeping.
enum class Ctx : std::uint8_t {
    root,
    list_metadata,
    items,
    item,
    metadata,
    spec,
    status,
    event,
    all
};

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
            return key == "serviceAccountName" || key == "serviceAccount" || key == "hostNetwork";
        case Ctx::status:
            return key == "phase" || key == "podIP" || key == "podIPs";
        case Ctx::items:
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
        default:
            return Ctx::all;
    }
}

// A SAX handler that builds a tree of only the fields a pod list parse needs. A kubelet pod
// is 2-10 KB of JSON of which nmid reads ~300 bytes; not materialising the rest (containers,
// env, managedFields, conditions) halves the parse time (bench/pod_list_bench.cpp). Iterative:
// nesting depth costs heap, never stack.
class FilteringSax final : public nlohmann::json_sax<Json> {
public:
    explicit FilteringSax(Ctx root_ctx = Ctx::root) : root_ctx_(root_ctx) {}

    bool null() override { return put(Json(nullptr)); }
    bool boolean(bool v) override { return put(Json(v)); }
    bool number_integer(number_integer_t v) override { return put(Json(v)); }
    bool number_unsigned(number_unsigned_t v) override { return put(Json(v)); }
    bool number_float(number_float_t v, const string_t& /*text*/) override { return put(Json(v)); }
    bool string(string_t& v) override { return put(Json(std::move(v))); }
    bool binary(binary_t& /*v*/) override { return put(Json(nullptr)); }  // not in JSON text
    bool start_object(std::size_t /*elements*/) override { return open(Json::value_t::object); }
    bool end_object() override { return close(); }
    bool start_array(std::size_t /*elements*/) override { return open(Json::value_t::array); }
    bool end_array() override { return close(); }

    bool key(string_t& k) override {
        if (skip_depth_ > 0) {
            return true;
        }
        if (wanted(stack_.back().ctx, k)) {
            key_ = std::move(k);
        } else {
            skip_value_ = true;
        }
        return true;
    }

    bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                     const nlohmann::detail::exception& ex) override {
        error_ = ex.what();
        return false;
    }

    [[nodiscard]] Json& root() { return root_; }
    [[nodiscard]] const std::string& error() const { return error_; }

private:
    struct Frame {
        Json* node;
        Ctx ctx;
    };

    Json* insert(Json v) {
        if (stack_.empty()) {
            root_ = std::move(v);
            return &root_;
        }
        Json& parent = *stack_.back().node;
        if (parent.is_array()) {
            return &parent.emplace_back(std::move(v));
        }
        Json& slot = parent[key_];
        slot = std::move(v);
        return &slot;
    }

    bool put(Json v) {
        if (skip_depth_ > 0) {
            return true;
        }
        if (skip_value_) {
            skip_value_ = false;
            return true;
        }
        insert(std::move(v));
        return true;
    }

    bool open(Json::value_t type) {
        if (skip_depth_ > 0) {
            ++skip_depth_;
            return true;
        }
        if (skip_value_) {
            skip_value_ = false;
            skip_depth_ = 1;
            return true;
        }
        Ctx ctx = root_ctx_;
        if (!stack_.empty()) {
            const Frame& parent = stack_.back();
            ctx = child_ctx(parent.ctx, parent.node->is_array() ? std::string_view{} : key_);
        }
        Json* node = insert(Json(type));
        stack_.push_back({node, ctx});
        return true;
    }

    bool close() {
        if (skip_depth_ > 0) {
            --skip_depth_;
        } else {
            stack_.pop_back();
        }
        return true;
    }

    Ctx root_ctx_;
    Json root_;
    std::vector<Frame> stack_;
    std::string key_;
    std::size_t skip_depth_ = 0;  ///< > 0: inside a skipped container
    bool skip_value_ = false;     ///< the value after the current key is skipped
    std::string error_;
};

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

// One-line error text: control characters from the input never reach a log line.
std::string one_line(std::string s) {
    for (char& c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            c = ' ';
        }
    }
    return s;
}

// Walks the filtered tree. Every check reports the field path; nothing here throws.
class Walker {
public:
    explicit Walker(std::string* detail) : detail_(detail) {}

    Result<PodList> walk(const Json& root) {
        if (!root.is_object()) {
            return fail(
                "", std::string{"expected a PodList object, got "} + std::string{type_name(root)});
        }
        if (const Json* kind = field(root, "kind")) {
            if (!kind->is_string()) {
                return fail("kind", expected("string", *kind));
            }
            const auto& k = kind->get_ref<const std::string&>();
            if (k == "Status") {
                const Json* message = field(root, "message");
                return fail("",
                            "got a Status object: " + (message != nullptr && message->is_string()
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

    // The list's metadata.resourceVersion: where a watch starts ("" when absent, as in the
    // kubelet's list). Called after walk() succeeded on the same root.
    Result<std::string> list_resource_version(const Json& root) {
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

    Result<PodWatchEvent> event(const Json& root) {
        item_.clear();
        pod_name_.clear();
        if (!root.is_object()) {
            return fail("", std::string{"expected a watch event object, got "} +
                                std::string{type_name(root)});
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

private:
    static const Json* field(const Json& obj, std::string_view key) {
        const auto it = obj.find(key);
        return it == obj.end() || it->is_null() ? nullptr : &*it;
    }

    static std::string expected(std::string_view what, const Json& got) {
        return "expected " + std::string{what} + ", got " + std::string{type_name(got)};
    }

    boost::system::error_code fail(std::string_view path, const std::string& what) {
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

    // Reads an optional string field into `out`; false (with the error set) on a wrong type.
    Result<void> opt_string(const Json& obj, std::string_view key, std::string_view path,
                            std::string& out) {
        if (const Json* v = field(obj, key)) {
            if (!v->is_string()) {
                return fail(path, expected("string", *v));
            }
            out = v->get<std::string>();
        }
        return {};
    }

    Result<void> add_ip(const std::string& text, std::string_view path, PodInfo& pod) {
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

    Result<void> parse_item(const Json& item, PodInfo& pod, bool& is_pod) {
        pod_name_.clear();
        if (!item.is_object()) {
            return fail("", expected("object", item));
        }
        if (const Json* kind = field(item, "kind")) {
            if (!kind->is_string()) {
                return fail("kind", expected("string", *kind));
            }
            if (kind->get_ref<const std::string&>() != "Pod") {
                is_pod = false;  // `kubectl get pods,services -o json` mixes kinds
                return {};
            }
        }
        const Json* metadata = field(item, "metadata");
        if (metadata == nullptr) {
            return fail("metadata", "missing");
        }
        if (!metadata->is_object()) {
            return fail("metadata", expected("object", *metadata));
        }
        NMID_PODS_TRY(opt_string(*metadata, "name", "metadata.name", pod.name));
        if (pod.name.empty()) {
            return fail("metadata.name", "missing");
        }
        NMID_PODS_TRY(opt_string(*metadata, "namespace", "metadata.namespace", pod.namespace_name));
        if (pod.namespace_name.empty()) {
            pod.namespace_name = "default";  // what kubectl assumes for a manifest without one
        }
        pod_name_ = pod.namespace_name + "/" + pod.name;
        NMID_PODS_TRY(opt_string(*metadata, "uid", "metadata.uid", pod.uid));
        if (const Json* labels = field(*metadata, "labels")) {
            if (!labels->is_object()) {
                return fail("metadata.labels", expected("object", *labels));
            }
            for (const auto& [k, v] : labels->items()) {
                if (!v.is_string()) {
                    return fail("metadata.labels." + k, expected("string", v));
                }
                pod.labels.emplace(k, v.get<std::string>());
            }
        }
        if (const Json* deletion = field(*metadata, "deletionTimestamp")) {
            if (!deletion->is_string()) {
                return fail("metadata.deletionTimestamp", expected("string", *deletion));
            }
            pod.terminating = true;
        }
        if (const Json* owners = field(*metadata, "ownerReferences")) {
            NMID_PODS_TRY(parse_owners(*owners, pod));
        }
        if (const Json* spec = field(item, "spec")) {
            if (!spec->is_object()) {
                return fail("spec", expected("object", *spec));
            }
            NMID_PODS_TRY(opt_string(*spec, "serviceAccountName", "spec.serviceAccountName",
                                     pod.service_account));
            if (pod.service_account.empty()) {
                NMID_PODS_TRY(opt_string(*spec, "serviceAccount", "spec.serviceAccount",
                                         pod.service_account));
            }
            if (const Json* host = field(*spec, "hostNetwork")) {
                if (!host->is_boolean()) {
                    return fail("spec.hostNetwork", expected("boolean", *host));
                }
                pod.host_network = host->get<bool>();
            }
        }
        if (const Json* status = field(item, "status")) {
            if (!status->is_object()) {
                return fail("status", expected("object", *status));
            }
            NMID_PODS_TRY(opt_string(*status, "phase", "status.phase", pod.phase));
            std::string pod_ip;
            NMID_PODS_TRY(opt_string(*status, "podIP", "status.podIP", pod_ip));
            NMID_PODS_TRY(add_ip(pod_ip, "status.podIP", pod));
            if (const Json* ips = field(*status, "podIPs")) {
                NMID_PODS_TRY(parse_pod_ips(*ips, pod));
            }
        }
        return {};
    }

    Result<void> parse_owners(const Json& owners, PodInfo& pod) {
        if (!owners.is_array()) {
            return fail("metadata.ownerReferences", expected("array", owners));
        }
        std::size_t i = 0;
        for (const Json& owner : owners) {
            const std::string path = "metadata.ownerReferences[" + std::to_string(i++) + "]";
            if (!owner.is_object()) {
                return fail(path, expected("object", owner));
            }
            std::string kind;
            std::string name;
            NMID_PODS_TRY(opt_string(owner, "kind", path + ".kind", kind));
            NMID_PODS_TRY(opt_string(owner, "name", path + ".name", name));
            // NMI matches the kind case-insensitively and takes the first ReplicaSet.
            if (pod.owner_replicaset.empty() && iequals(kind, "ReplicaSet")) {
                pod.owner_replicaset = std::move(name);
            }
        }
        return {};
    }

    Result<void> parse_pod_ips(const Json& ips, PodInfo& pod) {
        if (!ips.is_array()) {
            return fail("status.podIPs", expected("array", ips));
        }
        std::size_t i = 0;
        for (const Json& entry : ips) {
            const std::string path = "status.podIPs[" + std::to_string(i++) + "]";
            if (entry.is_string()) {
                NMID_PODS_TRY(add_ip(entry.get_ref<const std::string&>(), path, pod));
                continue;
            }
            if (!entry.is_object()) {
                return fail(path, expected("object or string", entry));
            }
            std::string ip;
            NMID_PODS_TRY(opt_string(entry, "ip", path + ".ip", ip));
            NMID_PODS_TRY(add_ip(ip, path + ".ip", pod));
        }
        return {};
    }

    std::string* detail_;
    std::string item_;      ///< "items[3]" of the item being read
    std::string pod_name_;  ///< "namespace/name" once known
};

#undef NMID_PODS_TRY

// Runs the filtering parser over `json` from `root_ctx`, then `walk` over the kept tree.
template <class T, class Walk>
Result<T> parse_with(std::string_view json, Ctx root_ctx, std::string* error_detail, Walk walk) {
    try {
        FilteringSax sax{root_ctx};
        if (!Json::sax_parse(json.begin(), json.end(), &sax, Json::input_format_t::json,
                             /*strict=*/true)) {
            if (error_detail != nullptr) {
                *error_detail = one_line(sax.error().empty() ? "invalid JSON" : sax.error());
            }
            return Errc::parse_error;
        }
        Walker walker{error_detail};
        return walk(walker, sax.root());
    } catch (const std::exception& e) {
        // Defensive: the parser reports errors through the SAX handler and the walker checks
        // every type before reading it, so nothing here is expected to throw.
        if (error_detail != nullptr) {
            *error_detail = one_line(e.what());
        }
        return Errc::parse_error;
    }
}

}  // namespace

Result<PodList> parse_pod_list(std::string_view json, std::string* error_detail) {
    return parse_with<PodList>(json, Ctx::root, error_detail,
                               [](Walker& w, const Json& root) { return w.walk(root); });
}

Result<PodListPage> parse_pod_list_page(std::string_view json, std::string* error_detail) {
    return parse_with<PodListPage>(json, Ctx::root, error_detail,
                                   [](Walker& w, const Json& root) -> Result<PodListPage> {
                                       auto list = w.walk(root);
                                       if (!list) {
                                           return list.error();
                                       }
                                       auto rv = w.list_resource_version(root);
                                       if (!rv) {
                                           return rv.error();
                                       }
                                       return PodListPage{std::move(*list), std::move(*rv)};
                                   });
}

Result<PodWatchEvent> parse_pod_watch_event(std::string_view line, std::string* error_detail) {
    return parse_with<PodWatchEvent>(line, Ctx::event, error_detail,
                                     [](Walker& w, const Json& root) { return w.event(root); });
}

Result<std::shared_ptr<const PodList>> PodListDecoder::decode(std::string_view body,
                                                              std::string* error_detail) {
    if (last_ && body == last_body_) {
        return last_;
    }
    auto parsed = parse_pod_list(body, error_detail);
    if (!parsed) {
        return parsed.error();
    }
    last_ = std::make_shared<const PodList>(std::move(*parsed));
    last_body_.assign(body);
    return last_;
}

}  // namespace nmid
