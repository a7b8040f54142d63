#include "support/fake_api_server.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <utility>

#include "nmid/core/hex.hpp"

namespace nmid::test {
namespace {

using json = nlohmann::json;

constexpr std::string_view kTimestamp = "2024-05-02T10:11:12Z";

struct Target {
    std::vector<std::string> segments;
    std::map<std::string, std::string> query;
};

Target parse_target(std::string_view target) {
    Target out;
    const auto q = target.find('?');
    const std::string_view path = target.substr(0, q);
    std::size_t pos = 0;
    while (pos < path.size()) {
        auto end = path.find('/', pos);
        if (end == std::string_view::npos) {
            end = path.size();
        }
        if (end > pos) {
            out.segments.push_back(percent_decode(path.substr(pos, end - pos), false));
        }
        pos = end + 1;
    }
    if (q == std::string_view::npos) {
        return out;
    }
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
        auto end = query.find('&');
        const std::string_view part = query.substr(0, end);
        const auto eq = part.find('=');
        out.query.emplace(
            percent_decode(part.substr(0, eq), true),
            eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1), true));
        if (end == std::string_view::npos) {
            break;
        }
        query.remove_prefix(end + 1);
    }
    return out;
}

std::optional<std::size_t> parse_size(std::string_view s) {
    std::size_t out = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc{} || end != s.data() + s.size()) {
        return std::nullopt;
    }
    return out;
}

std::string param(const Target& t, const std::string& name) {
    const auto it = t.query.find(name);
    return it == t.query.end() ? std::string{} : it->second;
}

FakeResponse json_response(int status, const json& body) {
    return FakeResponse{
        .status = status, .headers = {{"Content-Type", "application/json"}}, .body = body.dump()};
}

json status_body(int code, std::string_view reason, std::string_view message,
                 const json& details = nullptr) {
    json out = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
                {"status", "Failure"}, {"message", message}, {"reason", reason},
                {"code", code}};
    if (!details.is_null()) {
        out["details"] = details;
    }
    return out;
}

FakeResponse status_response(int code, std::string_view reason, std::string_view message,
                             const json& details = nullptr) {
    return json_response(code, status_body(code, reason, message, details));
}

const std::string& meta_string(const json& object, const char* field) {
    static const std::string kEmpty;
    const auto md = object.find("metadata");
    if (md == object.end() || !md->is_object()) {
        return kEmpty;
    }
    const auto it = md->find(field);
    return it != md->end() && it->is_string() ? it->get_ref<const std::string&>() : kEmpty;
}

// One requirement of a label or field selector.
struct Requirement {
    std::string key;
    enum class Op { equals, not_equals, exists, not_exists } op = Op::equals;
    std::string value;
};

std::vector<Requirement> parse_selector(std::string_view selector) {
    std::vector<Requirement> out;
    while (!selector.empty()) {
        const auto comma = selector.find(',');
        std::string_view part = selector.substr(0, comma);
        selector =
            comma == std::string_view::npos ? std::string_view{} : selector.substr(comma + 1);
        const auto trim = [](std::string_view s) {
            while (!s.empty() && s.front() == ' ') {
                s.remove_prefix(1);
            }
            while (!s.empty() && s.back() == ' ') {
                s.remove_suffix(1);
            }
            return s;
        };
        part = trim(part);
        if (part.empty()) {
            continue;
        }
        Requirement r;
        if (const auto ne = part.find("!="); ne != std::string_view::npos) {
            r = {std::string{trim(part.substr(0, ne))}, Requirement::Op::not_equals,
                 std::string{trim(part.substr(ne + 2))}};
        } else if (const auto eqeq = part.find("=="); eqeq != std::string_view::npos) {
            r = {std::string{trim(part.substr(0, eqeq))}, Requirement::Op::equals,
                 std::string{trim(part.substr(eqeq + 2))}};
        } else if (const auto eq = part.find('='); eq != std::string_view::npos) {
            r = {std::string{trim(part.substr(0, eq))}, Requirement::Op::equals,
                 std::string{trim(part.substr(eq + 1))}};
        } else if (part.front() == '!') {
            r = {std::string{trim(part.substr(1))}, Requirement::Op::not_exists, {}};
        } else {
            r = {std::string{part}, Requirement::Op::exists, {}};
        }
        out.push_back(std::move(r));
    }
    return out;
}

bool satisfied(const Requirement& r, const std::optional<std::string>& value) {
    switch (r.op) {
        case Requirement::Op::equals:
            return value && *value == r.value;
        case Requirement::Op::not_equals:
            return !value || *value != r.value;
        case Requirement::Op::exists:
            return value.has_value();
        case Requirement::Op::not_exists:
            return !value.has_value();
    }
    return false;
}

std::optional<std::string> label(const json& object, const std::string& key) {
    const auto md = object.find("metadata");
    if (md == object.end() || !md->is_object()) {
        return std::nullopt;
    }
    const auto labels = md->find("labels");
    if (labels == md->end() || !labels->is_object()) {
        return std::nullopt;
    }
    const auto it = labels->find(key);
    if (it == labels->end() || !it->is_string()) {
        return std::nullopt;
    }
    return it->get<std::string>();
}

bool field_supported(const std::string& field) {
    return field == "metadata.name" || field == "metadata.namespace" || field == "spec.nodeName";
}

std::optional<std::string> field(const json& object, const std::string& name) {
    if (name == "metadata.name") {
        return meta_string(object, "name");
    }
    if (name == "metadata.namespace") {
        return meta_string(object, "namespace");
    }
    // spec.nodeName: "" when unset, as the API server indexes it.
    const auto spec = object.find("spec");
    if (spec != object.end() && spec->is_object()) {
        const auto it = spec->find("nodeName");
        if (it != spec->end() && it->is_string()) {
            return it->get<std::string>();
        }
    }
    return std::string{};
}

struct Filter {
    std::string namespace_name;
    std::vector<Requirement> labels;
    std::vector<Requirement> fields;

    [[nodiscard]] bool matches(const json& object) const {
        if (!namespace_name.empty() && meta_string(object, "namespace") != namespace_name) {
            return false;
        }
        for (const auto& r : labels) {
            if (!satisfied(r, label(object, r.key))) {
                return false;
            }
        }
        for (const auto& r : fields) {
            if (!satisfied(r, field(object, r.key))) {
                return false;
            }
        }
        return true;
    }
};

std::string event_line(std::string_view type, const json& object) {
    return json{{"type", type}, {"object", object}}.dump() + "\n";
}

}  // namespace

std::vector<FakeResource> default_fake_resources() {
    const std::string g = "aadpodidentity.k8s.io";
    return {
        {g, "v1", "azureidentities", "AzureIdentity", "azureidentity", true, {}},
        {g,
         "v1",
         "azureidentitybindings",
         "AzureIdentityBinding",
         "azureidentitybinding",
         true,
         {}},
        {g,
         "v1",
         "azureassignedidentities",
         "AzureAssignedIdentity",
         "azureassignedidentity",
         true,
         {}},
        {g,
         "v1",
         "azurepodidentityexceptions",
         "AzurePodIdentityException",
         "azurepodidentityexception",
         true,
         {}},
        {"", "v1", "pods", "Pod", "pod", true, {"po"}},
        {"", "v1", "secrets", "Secret", "secret", true, {}},
    };
}

FakeApiServer::FakeApiServer(boost::asio::io_context& ioc, FakeApiServerOptions options)
    : FakeApiServer(std::move(options), {}) {
    if (!server_) {
        server_ = std::make_unique<FakeHttpServer>(
            ioc, [this](const FakeRequest& r) { return handle(r); }, options_.address);
    }
}

FakeApiServer::FakeApiServer(FakeApiServerOptions options, const ServerFactory& make_server)
    : options_(std::move(options)) {
    for (const auto& r : options_.resources) {
        resources_.emplace(r.plural, r);
    }
    if (make_server) {
        server_ = make_server([this](const FakeRequest& r) { return handle(r); });
    }
}

FakeApiServer::~FakeApiServer() {
    if (server_) {
        server_->stop();
    }
}

const FakeResource* FakeApiServer::find_resource(std::string_view plural) const {
    const auto it = resources_.find(plural);
    return it == resources_.end() ? nullptr : &it->second;
}

std::string FakeApiServer::rv_string(std::uint64_t rv) const {
    return options_.resource_version_prefix + std::to_string(rv);
}

std::optional<std::uint64_t> FakeApiServer::parse_rv(std::string_view rv) const {
    const auto& prefix = options_.resource_version_prefix;
    if (rv.substr(0, prefix.size()) != prefix) {
        return std::nullopt;
    }
    rv.remove_prefix(prefix.size());
    std::uint64_t out = 0;
    const auto [end, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), out);
    if (ec != std::errc{} || end != rv.data() + rv.size()) {
        return std::nullopt;
    }
    return out;
}

std::string FakeApiServer::resource_version() const {
    return rv_string(rv_);
}

std::string FakeApiServer::store(std::string_view plural, json object, bool keep_uid) {
    const FakeResource* resource = find_resource(plural);
    if (resource == nullptr) {
        throw std::invalid_argument("FakeApiServer: unknown resource " + std::string{plural});
    }
    if (!object.is_object() || meta_string(object, "name").empty()) {
        throw std::invalid_argument("FakeApiServer: object without metadata.name");
    }
    auto& md = object["metadata"];
    if (resource->namespaced && meta_string(object, "namespace").empty()) {
        md["namespace"] = "default";
    }
    const ObjectKey key{std::string{plural}, meta_string(object, "namespace"),
                        meta_string(object, "name")};
    std::optional<json> before;
    if (const auto it = objects_.find(key); it != objects_.end()) {
        before = it->second;
    }
    if (keep_uid && before) {
        md["uid"] = meta_string(*before, "uid");
        md["creationTimestamp"] = meta_string(*before, "creationTimestamp");
    }
    if (meta_string(object, "uid").empty()) {
        md["uid"] = "00000000-0000-4000-8000-" + std::to_string(100'000'000'000 + next_uid_++);
    }
    if (meta_string(object, "creationTimestamp").empty()) {
        md["creationTimestamp"] = kTimestamp;
    }
    object["kind"] = resource->kind;
    object["apiVersion"] = resource->api_version();
    ++rv_;
    md["resourceVersion"] = rv_string(rv_);
    objects_[key] = object;
    Event event{rv_, std::string{plural}, std::move(before), std::move(object)};
    publish(event);
    history_.push_back(std::move(event));
    return rv_string(rv_);
}

std::string FakeApiServer::create(std::string_view plural, json object) {
    return store(plural, std::move(object), false);
}

std::string FakeApiServer::update(std::string_view plural, json object) {
    return store(plural, std::move(object), true);
}

bool FakeApiServer::remove(std::string_view plural, std::string_view namespace_name,
                           std::string_view name) {
    const ObjectKey key{std::string{plural}, std::string{namespace_name}, std::string{name}};
    const auto it = objects_.find(key);
    if (it == objects_.end()) {
        return false;
    }
    json before = std::move(it->second);
    objects_.erase(it);
    ++rv_;
    Event event{rv_, std::string{plural}, std::move(before), std::nullopt};
    publish(event);
    history_.push_back(std::move(event));
    return true;
}

std::optional<json> FakeApiServer::object(std::string_view plural, std::string_view namespace_name,
                                          std::string_view name) const {
    const auto it =
        objects_.find({std::string{plural}, std::string{namespace_name}, std::string{name}});
    if (it == objects_.end()) {
        return std::nullopt;
    }
    return it->second;
}

bool FakeApiServer::watch_open(const FakeWatch& w) const {
    return !w.ended && server_->stream_open(w.stream);
}

std::size_t FakeApiServer::open_watches() const {
    return static_cast<std::size_t>(std::count_if(
        watches_.begin(), watches_.end(), [this](const FakeWatch& w) { return watch_open(w); }));
}

namespace {

// The line a watch with `filter` sees for one change, "" when none (the apiserver cacher's
// rules: entering the filter is ADDED, leaving it DELETED with the previous state).
std::string line_for(const Filter& filter, const std::optional<json>& before,
                     const std::optional<json>& after, const std::string& rv) {
    const bool was = before && filter.matches(*before);
    const bool is = after && filter.matches(*after);
    if (is) {
        return event_line(was ? "MODIFIED" : "ADDED", *after);
    }
    if (!was) {
        return {};
    }
    json gone = *before;
    gone["metadata"]["resourceVersion"] = rv;
    if (!after) {
        gone["metadata"]["deletionTimestamp"] = kTimestamp;
        gone["metadata"]["deletionGracePeriodSeconds"] = 0;
    }
    return event_line("DELETED", gone);
}

Filter filter_of(const FakeWatch& w) {
    return Filter{w.namespace_name, parse_selector(w.label_selector),
                  parse_selector(w.field_selector)};
}

}  // namespace

void FakeApiServer::publish(const Event& event) {
    for (auto& w : watches_) {
        if (w.plural != event.plural || !watch_open(w)) {
            continue;
        }
        std::string line = line_for(filter_of(w), event.before, event.after, rv_string(event.rv));
        if (!line.empty()) {
            server_->push(w.stream, std::move(line));
        }
    }
}

void FakeApiServer::bookmark() {
    for (auto& w : watches_) {
        if (!w.bookmarks || !watch_open(w)) {
            continue;
        }
        const FakeResource& r = *find_resource(w.plural);
        server_->push(w.stream, event_line("BOOKMARK",
                                           {{"kind", r.kind},
                                            {"apiVersion", r.api_version()},
                                            {"metadata", {{"resourceVersion", rv_string(rv_)}}}}));
    }
}

void FakeApiServer::compact() {
    compacted_ = rv_;
    history_.clear();
}

void FakeApiServer::expire_watches() {
    for (auto& w : watches_) {
        if (!watch_open(w)) {
            continue;
        }
        const std::string message =
            "too old resource version: " + w.resource_version + " (" + rv_string(rv_) + ")";
        server_->push(w.stream, event_line("ERROR", status_body(410, "Expired", message)));
        server_->finish(w.stream);
        w.ended = true;
    }
}

void FakeApiServer::end_watches() {
    for (auto& w : watches_) {
        if (watch_open(w)) {
            server_->finish(w.stream);
            w.ended = true;
        }
    }
}

void FakeApiServer::cut_watches(const std::string& partial) {
    for (auto& w : watches_) {
        if (!watch_open(w)) {
            continue;
        }
        if (!partial.empty()) {
            server_->push(w.stream, partial);
        }
        server_->abort(w.stream);
        w.ended = true;
    }
}

void FakeApiServer::push_raw(std::size_t index, std::string bytes) {
    server_->push(watches_.at(index).stream, std::move(bytes));
}

void FakeApiServer::fail_next(std::string path_part, int status, std::string reason, int times,
                              std::string retry_after) {
    failures_.push_back(
        Failure{std::move(path_part), status, std::move(reason), times, std::move(retry_after)});
}

FakeResponse FakeApiServer::handle(const FakeRequest& request) {
    if (!options_.token.empty() && request.header("Authorization") != "Bearer " + options_.token) {
        return status_response(401, "Unauthorized", "Unauthorized");
    }
    const std::string_view path =
        std::string_view{request.target}.substr(0, std::string_view{request.target}.find('?'));
    for (auto& f : failures_) {
        if (f.remaining > 0 && path.find(f.path_part) != std::string_view::npos) {
            --f.remaining;
            auto r = status_response(f.status, f.reason, "injected by the test");
            if (!f.retry_after.empty()) {
                r.headers.emplace_back("Retry-After", f.retry_after);
            }
            return r;
        }
    }
    if (request.method != "GET") {
        return status_response(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource");
    }
    const Target target = parse_target(request.target);
    const auto& seg = target.segments;
    const auto hold = [this](FakeResponse r) {
        r.hold = hold_;
        return r;
    };

    // Discovery (what kubectl reads before anything else).
    if (seg == std::vector<std::string>{"version"}) {
        return hold(json_response(200, {{"major", "1"},
                                        {"minor", "28"},
                                        {"gitVersion", "v1.28.0-nmid-fake"},
                                        {"platform", "linux/amd64"}}));
    }
    if (seg == std::vector<std::string>{"api"}) {
        return hold(json_response(
            200, {{"kind", "APIVersions"},
                  {"versions", {"v1"}},
                  {"serverAddressByClientCIDRs",
                   {{{"clientCIDR", "0.0.0.0/0"},
                     {"serverAddress", server_->address() + ":" + std::to_string(port())}}}}}));
    }
    if (seg == std::vector<std::string>{"apis"}) {
        json groups = json::array();
        std::map<std::string, std::string> seen;  // group -> version
        for (const auto& [plural, r] : resources_) {
            if (!r.group.empty()) {
                seen.emplace(r.group, r.version);
            }
        }
        for (const auto& [g, v] : seen) {
            std::string group_version = g;
            group_version.append("/").append(v);
            const json gv = {{"groupVersion", group_version}, {"version", v}};
            groups.push_back({{"name", g}, {"versions", {gv}}, {"preferredVersion", gv}});
        }
        return hold(json_response(
            200, {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}}));
    }
    const bool core = !seg.empty() && seg[0] == "api";
    const std::size_t prefix = core ? 2 : 3;
    if (seg.size() < prefix || (!core && seg[0] != "apis") || (core && seg[1] != "v1")) {
        return status_response(404, "NotFound", "the server could not find the requested resource");
    }
    const std::string group = core ? "" : seg[1];
    const std::string version = core ? seg[1] : seg[2];
    if (seg.size() == prefix) {
        json list = json::array();
        for (const auto& [plural, r] : resources_) {
            if (r.group != group || r.version != version) {
                continue;
            }
            json entry = {{"name", r.plural},
                          {"singularName", r.singular},
                          {"namespaced", r.namespaced},
                          {"kind", r.kind},
                          {"verbs", {"get", "list", "watch"}}};
            if (!r.short_names.empty()) {
                entry["shortNames"] = r.short_names;
            }
            list.push_back(std::move(entry));
        }
        if (list.empty()) {
            return status_response(404, "NotFound",
                                   "the server could not find the requested resource");
        }
        return hold(json_response(200, {{"kind", "APIResourceList"},
                                        {"apiVersion", "v1"},
                                        {"groupVersion", core ? version : group + "/" + version},
                                        {"resources", list}}));
    }

    // Resources: <plural>[/<name>] or namespaces/<ns>/<plural>[/<name>].
    std::vector<std::string> rest(seg.begin() + static_cast<std::ptrdiff_t>(prefix), seg.end());
    std::string ns;
    if (rest.size() >= 3 && rest[0] == "namespaces") {
        ns = rest[1];
        rest.erase(rest.begin(), rest.begin() + 2);
    }
    const FakeResource* resource = rest.empty() ? nullptr : find_resource(rest[0]);
    if (resource == nullptr || resource->group != group || resource->version != version ||
        rest.size() > 2) {
        return status_response(404, "NotFound", "the server could not find the requested resource");
    }
    if (rest.size() == 2) {
        const auto obj = object(resource->plural, ns, rest[1]);
        if (!obj) {
            return hold(status_response(404, "NotFound",
                                        resource->plural + " \"" + rest[1] + "\" not found",
                                        {{"name", rest[1]}, {"kind", resource->plural}}));
        }
        return hold(json_response(200, *obj));
    }

    Filter filter{ns, parse_selector(param(target, "labelSelector")),
                  parse_selector(param(target, "fieldSelector"))};
    for (const auto& r : filter.fields) {
        if (!field_supported(r.key)) {
            return hold(status_response(400, "BadRequest", "field label not supported: " + r.key));
        }
    }
    const std::string watch = param(target, "watch");
    if (watch == "true" || watch == "1") {
        FakeWatch w;
        w.plural = resource->plural;
        w.namespace_name = ns;
        w.label_selector = param(target, "labelSelector");
        w.field_selector = param(target, "fieldSelector");
        w.resource_version = param(target, "resourceVersion");
        w.timeout_seconds = param(target, "timeoutSeconds");
        w.bookmarks = param(target, "allowWatchBookmarks") == "true";
        w.request = server_->received().size() - 1;

        std::vector<std::string> initial;
        const bool from_now = w.resource_version.empty() || w.resource_version == "0";
        if (from_now || param(target, "sendInitialEvents") == "true") {
            for (const auto& [key, obj] : objects_) {
                if (std::get<0>(key) == resource->plural && filter.matches(obj)) {
                    initial.push_back(event_line("ADDED", obj));
                }
            }
            if (param(target, "sendInitialEvents") == "true" && w.bookmarks) {
                initial.push_back(event_line(
                    "BOOKMARK", {{"kind", resource->kind},
                                 {"apiVersion", resource->api_version()},
                                 {"metadata",
                                  {{"resourceVersion", rv_string(rv_)},
                                   {"annotations", {{"k8s.io/initial-events-end", "true"}}}}}}));
            }
        } else {
            const auto rv = parse_rv(w.resource_version);
            if (!rv) {
                return status_response(400, "BadRequest",
                                       "invalid resource version: " + w.resource_version);
            }
            if (*rv < compacted_) {
                const std::string message = "too old resource version: " + w.resource_version +
                                            " (" + rv_string(compacted_) + ")";
                if (!options_.expired_watch_as_error_event) {
                    return status_response(410, "Expired", message);
                }
                return FakeResponse{
                    .status = 200,
                    .headers = {{"Content-Type", "application/json"}},
                    .chunks = {event_line("ERROR", status_body(410, "Expired", message))}};
            }
            for (const auto& e : history_) {
                if (e.rv > *rv && e.plural == resource->plural) {
                    std::string line = line_for(filter, e.before, e.after, rv_string(e.rv));
                    if (!line.empty()) {
                        initial.push_back(std::move(line));
                    }
                }
            }
        }
        // FakeHttpServer numbers streams in the order it opens them, which happens right
        // after this handler returns.
        w.stream = server_->streams();
        watches_.push_back(std::move(w));
        return FakeResponse{.status = 200,
                            .headers = {{"Content-Type", "application/json"}},
                            .chunks = std::move(initial),
                            .stream = true};
    }

    // LIST.
    std::vector<json> items;
    for (const auto& [key, obj] : objects_) {
        if (std::get<0>(key) == resource->plural && filter.matches(obj)) {
            json item = obj;
            if (core) {
                // Items of built-in lists carry neither kind nor apiVersion (CR items do).
                item.erase("kind");
                item.erase("apiVersion");
            }
            items.push_back(std::move(item));
        }
    }
    json list_md = {{"resourceVersion", rv_string(rv_)}};
    std::size_t offset = 0;
    std::size_t limit = items.size();
    const std::string limit_param = param(target, "limit");
    const std::string cont = param(target, "continue");
    if (!cont.empty()) {
        // "<rv>/<offset>": expired once the history it was taken at is compacted away.
        const auto slash = cont.find('/');
        const auto rv = parse_rv(cont.substr(0, slash));
        const auto at = slash == std::string::npos
                            ? std::nullopt
                            : parse_size(std::string_view{cont}.substr(slash + 1));
        if (!rv || !at) {
            return hold(status_response(400, "BadRequest", "invalid continue token"));
        }
        if (*rv < compacted_) {
            return hold(status_response(
                410, "Expired",
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter."));
        }
        offset = std::min(*at, items.size());
        list_md["resourceVersion"] = cont.substr(0, slash);
    }
    // resourceVersion=0 is served from the watch cache, which ignores limit.
    if (!limit_param.empty() && param(target, "resourceVersion") != "0") {
        const auto n = parse_size(limit_param);
        if (!n) {
            return hold(status_response(400, "BadRequest", "invalid limit: " + limit_param));
        }
        if (*n > 0) {
            limit = *n;
        }
    }
    json out_items = json::array();
    for (std::size_t i = offset; i < items.size() && i < offset + limit; ++i) {
        out_items.push_back(std::move(items[i]));
    }
    if (offset + limit < items.size()) {
        list_md["continue"] =
            list_md["resourceVersion"].get<std::string>() + "/" + std::to_string(offset + limit);
        list_md["remainingItemCount"] = items.size() - offset - limit;
    }
    return hold(json_response(200, {{"kind", resource->kind + "List"},
                                    {"apiVersion", resource->api_version()},
                                    {"metadata", list_md},
                                    {"items", out_items}}));
}

}  // namespace nmid::test
