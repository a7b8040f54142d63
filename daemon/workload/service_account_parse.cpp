// The pure half of the ServiceAccount source: one object, its annotations validated.
#include <nlohmann/json.hpp>

#include "nmid/workload/constants.hpp"
#include "nmid/workload/service_accounts.hpp"

namespace nmid::workload {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxName = 253;

bool alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string string_field(const Json& obj, std::string_view key) {
    const auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::string printable(std::string_view value) {
    std::string out{value.substr(0, 64)};
    for (char& c : out) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
            c = '?';
        }
    }
    return out;
}

}  // namespace

bool valid_client_id(std::string_view value) noexcept {
    if (value.empty() || value.size() > 128) {
        return false;
    }
    for (const char c : value) {
        if (!alnum(c) && c != '-' && c != '.' && c != '_') {
            return false;
        }
    }
    return true;
}

bool valid_tenant_id(std::string_view value) noexcept {
    if (value.empty() || value.size() > 253 || value.front() == '.' || value.front() == '-' ||
        value.find("..") != std::string_view::npos) {
        return false;
    }
    for (const char c : value) {
        if (!alnum(c) && c != '-' && c != '.') {
            return false;
        }
    }
    return true;
}

ServiceAccountPtr ServiceAccountSnapshot::find(std::string_view namespace_name,
                                               std::string_view name) const {
    std::string key;
    key.reserve(namespace_name.size() + 1 + name.size());
    key.append(namespace_name).append("/").append(name);
    const auto it = accounts.find(key);
    return it == accounts.end() ? nullptr : it->second;
}

bool parse_service_account(const Json& object, ServiceAccountInfo& out, std::string& detail) {
    const auto metadata = object.is_object() ? object.find("metadata") : object.end();
    if (!object.is_object() || metadata == object.end() || !metadata->is_object()) {
        detail = "ServiceAccount without metadata";
        return false;
    }
    out.name = string_field(*metadata, "name");
    out.namespace_name = string_field(*metadata, "namespace");
    out.uid = string_field(*metadata, "uid");
    if (out.name.empty() || out.namespace_name.empty() || out.name.size() > kMaxName ||
        out.namespace_name.size() > kMaxName) {
        detail = "ServiceAccount without a usable metadata.name and metadata.namespace";
        return false;
    }
    const auto annotations = metadata->find("annotations");
    if (annotations == metadata->end() || !annotations->is_object()) {
        return true;
    }
    const auto client = annotations->find(kClientIdAnnotation);
    if (client != annotations->end()) {
        out.has_client_id = true;
        const std::string value = client->is_string() ? client->get<std::string>() : std::string{};
        if (valid_client_id(value)) {
            out.client_id = value;
        } else {
            out.invalid_reason = std::string{kClientIdAnnotation} + " \"" + printable(value) +
                                 "\" is not a client ID (1 to 128 of A-Z a-z 0-9 . _ -)";
        }
    }
    const auto tenant = annotations->find(kTenantIdAnnotation);
    if (tenant != annotations->end()) {
        const std::string value = tenant->is_string() ? tenant->get<std::string>() : std::string{};
        if (valid_tenant_id(value)) {
            out.tenant_id = value;
        } else if (out.invalid_reason.empty()) {
            out.invalid_reason = std::string{kTenantIdAnnotation} + " \"" + printable(value) +
                                 "\" is not a tenant ID or domain name";
        }
    }
    return true;
}

}  // namespace nmid::workload
