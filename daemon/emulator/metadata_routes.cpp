// The emulator's instance metadata routes: `/metadata/instance[/...]` and
// `/metadata/identity/info`.
#include <charconv>
#include <nlohmann/json.hpp>
#include <string>

#include "format.hpp"
#include "nmid/emulator/emulator.hpp"
#include "responses.hpp"

namespace nmid::emulator {

using http::HttpRequest;
using http::HttpResponse;

namespace {

/// `format=text` rendering of an instance-metadata node, as IMDS lists it: leaves as their
/// value, objects as their keys (containers with a trailing '/'), arrays as indices.
std::string as_text(const nlohmann::json& node) {
    if (node.is_string()) {
        return node.get<std::string>();
    }
    if (!node.is_structured()) {
        return node.dump();
    }
    std::string out;
    std::size_t index = 0;
    for (auto it = node.begin(); it != node.end(); ++it, ++index) {
        if (!out.empty()) {
            out += '\n';
        }
        out += node.is_object() ? it.key() : std::to_string(index);
        if (it->is_structured()) {
            out += '/';
        }
    }
    return out;
}

}  // namespace

// IMDS's `/metadata/identity/info`: the VM's tenant, as `{"tenantId": ...}`.
HttpResponse EmulatorHandler::identity_info(const HttpRequest& request) {
    if (auto refused = refuse_request(request)) {
        return std::move(*refused);
    }
    {
        std::lock_guard lock{mutex_};
        ++identity_info_requests_;
    }
    return json_response(200, R"({"tenantId":")" + std::string{kTenantId} + R"("})");
}

HttpResponse EmulatorHandler::instance(const HttpRequest& request, std::string_view path,
                                       std::string_view query) {
    if (auto refused = refuse_request(request)) {
        return std::move(*refused);
    }
    auto q = detail::parse_query(query);
    bool text = q.format && *q.format == "text";
    if (path.find_first_not_of('/') == std::string_view::npos && !text) {
        std::lock_guard lock{mutex_};
        ++instance_requests_;
        return json_response(200, instance_json_);
    }

    auto doc = nlohmann::json::parse(instance_json_);
    const nlohmann::json* node = &doc;
    while (!path.empty()) {
        auto slash = path.find('/', 1);
        auto segment = path.substr(1, slash == std::string_view::npos ? path.size() : slash - 1);
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
        if (segment.empty()) {
            continue;
        }
        const nlohmann::json* next = nullptr;
        if (node->is_object()) {
            auto it = node->find(std::string{segment});
            next = it == node->end() ? nullptr : &*it;
        } else if (node->is_array()) {
            std::size_t i = 0;
            auto [end, ec] = std::from_chars(segment.data(), segment.data() + segment.size(), i);
            if (ec == std::errc{} && end == segment.data() + segment.size() && i < node->size()) {
                next = &(*node)[i];
            }
        }
        if (next == nullptr) {
            return reject(404, "not_found", "The requested metadata category was not found");
        }
        node = next;
    }
    {
        std::lock_guard lock{mutex_};
        ++instance_requests_;
    }
    if (text) {
        HttpResponse response;
        response.content_type = "text/plain; charset=utf-8";
        response.body = as_text(*node);
        return response;
    }
    return json_response(200, node->dump());
}

}  // namespace nmid::emulator
