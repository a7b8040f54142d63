#include "support/fake_node_status.hpp"

#include <regex>

#include "support/kube_status.hpp"

namespace nmid::test {

using Json = nlohmann::json;

namespace {

constexpr std::string_view kStrategic = "application/strategic-merge-patch+json";
constexpr std::string_view kMerge = "application/merge-patch+json";

// Strategic merge of a list with merge key `type`: patch entries replace the fields they
// name in the entry of the same type, or are appended.
void merge_conditions(Json& current, const Json& patch) {
    if (!current.is_array()) {
        current = Json::array();
    }
    for (const auto& entry : patch) {
        auto it = std::find_if(current.begin(), current.end(), [&](const Json& c) {
            return c.value("type", "") == entry.value("type", "");
        });
        if (it == current.end()) {
            current.push_back(entry);
        } else {
            it->update(entry);
        }
    }
}

}  // namespace

FakeHttpServer::Handler FakeNodeStatus::wrap(FakeHttpServer::Handler api_handler) {
    return [this, api_handler = std::move(api_handler)](const FakeRequest& request) {
        if (request.method == "PATCH" && request.target.starts_with("/api/v1/nodes/")) {
            return handle(request);
        }
        return api_handler(request);
    };
}

FakeResponse FakeNodeStatus::handle(const FakeRequest& request) {
    static const std::regex status_path{R"(^/api/v1/nodes/([^/?]+)/status$)"};
    NodePatchCall call;
    const auto type = request.headers.find("Content-Type");
    call.content_type = type == request.headers.end() ? "" : type->second;
    call.body = Json::parse(request.body, nullptr, false);
    const auto answer = [&](FakeResponse r) {
        call.status = r.status;
        calls_.push_back(std::move(call));
        return r;
    };
    std::smatch m;
    if (!std::regex_match(request.target, m, status_path)) {
        return answer(kube_status(405, "MethodNotAllowed", "only the status subresource"));
    }
    call.node = m[1].str();
    if (call.content_type != kStrategic && call.content_type != kMerge) {
        return answer(kube_status(415, "UnsupportedMediaType",
                                  "the body of the request was in an unknown format"));
    }
    if (!call.body.is_object()) {
        return answer(kube_status(400, "BadRequest", "the patch is not a JSON object"));
    }
    auto node = api_ == nullptr ? std::nullopt : api_->object("nodes", "", call.node);
    if (!node) {
        return answer(kube_status(404, "NotFound", "nodes \"" + call.node + "\" not found"));
    }
    const Json& status_patch = call.body.value("status", Json::object());
    Json& status = (*node)["status"];
    for (const auto& [key, value] : status_patch.items()) {
        if (key == "conditions" && call.content_type == kStrategic && value.is_array()) {
            merge_conditions(status["conditions"], value);
        } else {
            status[key] = value;
        }
    }
    api_->update("nodes", *node);
    FakeResponse ok{.status = 200,
                    .headers = {{"Content-Type", "application/json"}},
                    .body = api_->object("nodes", "", call.node)->dump()};
    return answer(std::move(ok));
}

Json FakeNodeStatus::conditions(const std::string& node) const {
    const auto object = api_ == nullptr ? std::nullopt : api_->object("nodes", "", node);
    if (!object || !object->contains("status") || !(*object)["status"].contains("conditions")) {
        return Json::array();
    }
    return (*object)["status"]["conditions"];
}

Json FakeNodeStatus::condition(const std::string& node, const std::string& type) const {
    for (const auto& c : conditions(node)) {
        if (c.value("type", "") == type) {
            return c;
        }
    }
    return nullptr;
}

FakeApiServerOptions with_nodes(FakeApiServerOptions options) {
    options.resources.push_back(FakeResource{.group = "",
                                             .version = "v1",
                                             .plural = "nodes",
                                             .kind = "Node",
                                             .singular = "node",
                                             .namespaced = false,
                                             .short_names = {"no"}});
    return options;
}

Json node_object(const std::string& name) {
    return {{"apiVersion", "v1"},
            {"kind", "Node"},
            {"metadata", {{"name", name}}},
            {"status",
             {{"conditions", Json::array({{{"type", "Ready"},
                                           {"status", "True"},
                                           {"reason", "KubeletReady"},
                                           {"message", "kubelet is posting ready status"}}})}}}};
}

}  // namespace nmid::test
