#include "crd_json.hpp"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace nmid::crd_detail {
namespace {

using json = nlohmann::json;

constexpr std::string_view kDefaultNamespace = "default";

// Reads typed fields of one object and remembers the first mistake as "<path> must be ...".
// Every accessor checks the JSON type before touching the value: nlohmann throws otherwise.
class FieldReader {
public:
    explicit FieldReader(std::string& error) : error_(error) {}

    /// `parent[key]`, else `parent[legacy]` (aad-pod-identity before 1.6 used Go field names);
    /// nullptr when absent or null.
    static const json* member(const json& parent, std::string_view key,
                              std::string_view legacy = {}) {
        if (!parent.is_object()) {
            return nullptr;
        }
        for (const std::string_view name : {key, legacy}) {
            if (name.empty()) {
                continue;
            }
            const auto it = parent.find(std::string{name});
            if (it != parent.end() && !it->is_null()) {
                return &*it;
            }
        }
        return nullptr;
    }

    bool object(const json& parent, std::string_view path, std::string_view key,
                std::string_view legacy, const json*& out) {
        out = member(parent, key, legacy);
        if (out != nullptr && !out->is_object()) {
            out = nullptr;
            return fail(path, key, "an object");
        }
        return true;
    }

    bool string(const json& parent, std::string_view path, std::string_view key,
                std::string_view legacy, std::string& out) {
        const json* value = member(parent, key, legacy);
        if (value == nullptr) {
            return true;
        }
        if (!value->is_string()) {
            return fail(path, key, "a string");
        }
        out = value->get_ref<const std::string&>();
        return true;
    }

    bool integer(const json& parent, std::string_view path, std::string_view key,
                 std::string_view legacy, int& out) {
        const json* value = member(parent, key, legacy);
        if (value == nullptr) {
            return true;
        }
        if (value->is_number_unsigned()) {
            const auto v = value->get<std::uint64_t>();
            if (v > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
                return fail(path, key, "a 32-bit integer");
            }
            out = static_cast<int>(v);
            return true;
        }
        if (value->is_number_integer()) {
            const auto v = value->get<std::int64_t>();
            if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
                return fail(path, key, "a 32-bit integer");
            }
            out = static_cast<int>(v);
            return true;
        }
        return fail(path, key, "an integer");
    }

    bool string_list(const json& parent, std::string_view path, std::string_view key,
                     std::string_view legacy, std::vector<std::string>& out) {
        const json* value = member(parent, key, legacy);
        if (value == nullptr) {
            return true;
        }
        if (!value->is_array()) {
            return fail(path, key, "a list of strings");
        }
        out.clear();
        out.reserve(value->size());
        for (const auto& item : *value) {
            if (!item.is_string()) {
                return fail(path, key, "a list of strings");
            }
            out.push_back(item.get_ref<const std::string&>());
        }
        return true;
    }

    bool string_map(const json& parent, std::string_view path, std::string_view key,
                    std::string_view legacy, std::map<std::string, std::string>& out) {
        const json* value = member(parent, key, legacy);
        if (value == nullptr) {
            return true;
        }
        if (!value->is_object()) {
            return fail(path, key, "a map of strings");
        }
        out.clear();
        for (const auto& [k, v] : value->items()) {
            if (!v.is_string()) {
                std::string item_path{path};
                item_path += key;
                item_path += '.';
                return fail(item_path, k, "a string");
            }
            out.emplace(k, v.get_ref<const std::string&>());
        }
        return true;
    }

private:
    bool fail(std::string_view path, std::string_view key, std::string_view what) {
        if (error_.empty()) {
            error_ = std::string{path} + std::string{key} + " must be " + std::string{what};
        }
        return false;
    }

    std::string& error_;
};

bool read_meta(const json& object, ObjectMeta& meta, FieldReader& r) {
    const json* md = nullptr;
    if (!r.object(object, "", "metadata", {}, md)) {
        return false;
    }
    if (md == nullptr) {
        meta.namespace_name = kDefaultNamespace;
        return true;
    }
    const bool ok = r.string(*md, "metadata.", "name", {}, meta.name) &&
                    r.string(*md, "metadata.", "namespace", {}, meta.namespace_name) &&
                    r.string(*md, "metadata.", "uid", {}, meta.uid) &&
                    r.string(*md, "metadata.", "resourceVersion", {}, meta.resource_version) &&
                    r.string_map(*md, "metadata.", "labels", {}, meta.labels) &&
                    r.string_map(*md, "metadata.", "annotations", {}, meta.annotations);
    if (meta.namespace_name.empty()) {
        meta.namespace_name = kDefaultNamespace;
    }
    return ok;
}

// Spec fields are read from "spec"; `path` prefixes error paths (embedded objects of an
// AzureAssignedIdentity report `spec.azureIdentityRef.spec.clientID`).
bool read_identity(const json& object, AzureIdentity& id, FieldReader& r, std::string_view path) {
    if (!read_meta(object, id.meta, r)) {
        return false;
    }
    const json* spec = nullptr;
    const std::string spec_path = std::string{path} + "spec.";
    if (!r.object(object, path, "spec", "Spec", spec)) {
        return false;
    }
    if (spec == nullptr) {
        return true;
    }
    const json* secret = nullptr;
    const bool ok = r.integer(*spec, spec_path, "type", "Type", id.type) &&
                    r.string(*spec, spec_path, "resourceID", "ResourceID", id.resource_id) &&
                    r.string(*spec, spec_path, "clientID", "ClientID", id.client_id) &&
                    r.string(*spec, spec_path, "objectID", "ObjectID", id.object_id) &&
                    r.string(*spec, spec_path, "tenantID", "TenantID", id.tenant_id) &&
                    r.string_list(*spec, spec_path, "auxiliaryTenantIDs", "AuxiliaryTenantIDs",
                                  id.auxiliary_tenant_ids) &&
                    r.string(*spec, spec_path, "adEndpoint", "ADEndpoint", id.ad_endpoint) &&
                    r.object(*spec, spec_path, "clientPassword", "ClientPassword", secret);
    if (!ok || secret == nullptr) {
        return ok;
    }
    // A core/v1 SecretReference: lower case in every version.
    const std::string secret_path = spec_path + "clientPassword.";
    return r.string(*secret, secret_path, "name", {}, id.client_password.name) &&
           r.string(*secret, secret_path, "namespace", {}, id.client_password.namespace_name);
}

bool read_binding(const json& object, AzureIdentityBinding& binding, FieldReader& r,
                  std::string_view path) {
    if (!read_meta(object, binding.meta, r)) {
        return false;
    }
    const json* spec = nullptr;
    const std::string spec_path = std::string{path} + "spec.";
    if (!r.object(object, path, "spec", "Spec", spec)) {
        return false;
    }
    if (spec == nullptr) {
        return true;
    }
    return r.string(*spec, spec_path, "azureIdentity", "AzureIdentity", binding.azure_identity) &&
           r.string(*spec, spec_path, "selector", "Selector", binding.selector) &&
           r.integer(*spec, spec_path, "weight", "Weight", binding.weight);
}

bool read_exception(const json& object, AzurePodIdentityException& exception, FieldReader& r) {
    if (!read_meta(object, exception.meta, r)) {
        return false;
    }
    const json* spec = nullptr;
    if (!r.object(object, "", "spec", "Spec", spec)) {
        return false;
    }
    return spec == nullptr ||
           r.string_map(*spec, "spec.", "podLabels", "PodLabels", exception.pod_labels);
}

bool read_assigned(const json& object, AzureAssignedIdentity& assigned, FieldReader& r) {
    if (!read_meta(object, assigned.meta, r)) {
        return false;
    }
    const json* spec = nullptr;
    const json* status = nullptr;
    if (!r.object(object, "", "spec", "Spec", spec) ||
        !r.object(object, "", "status", "Status", status)) {
        return false;
    }
    if (status != nullptr && !r.string(*status, "status.", "status", "Status", assigned.status)) {
        return false;
    }
    if (spec == nullptr) {
        return true;
    }
    const json* identity = nullptr;
    const json* binding = nullptr;
    const bool ok =
        r.string(*spec, "spec.", "pod", "Pod", assigned.pod) &&
        r.string(*spec, "spec.", "podNamespace", "PodNamespace", assigned.pod_namespace) &&
        r.string(*spec, "spec.", "nodename", "NodeName", assigned.node_name) &&
        r.object(*spec, "spec.", "azureIdentityRef", "AzureIdentityRef", identity) &&
        r.object(*spec, "spec.", "azureBindingRef", "AzureBindingRef", binding);
    if (!ok) {
        return false;
    }
    if (identity != nullptr &&
        !read_identity(*identity, assigned.identity_ref, r, "spec.azureIdentityRef.")) {
        return false;
    }
    return binding == nullptr ||
           read_binding(*binding, assigned.binding_ref, r, "spec.azureBindingRef.");
}

std::string_view kind_name(CrdKind kind) {
    switch (kind) {
        case CrdKind::identity:
            return "AzureIdentity";
        case CrdKind::binding:
            return "AzureIdentityBinding";
        case CrdKind::exception:
            return "AzurePodIdentityException";
        case CrdKind::assigned:
            return "AzureAssignedIdentity";
    }
    return "?";
}

template <class T, class Read>
bool append(const json& object, CrdKind kind, std::vector<T>& out, std::string& error, Read read) {
    std::string field_error;
    FieldReader reader{field_error};
    T item;
    if (!object.is_object()) {
        error = std::string{kind_name(kind)} + ": object expected";
        return false;
    }
    if (!read(object, item, reader)) {
        error = std::string{kind_name(kind)};
        if (!item.meta.name.empty()) {
            error += ' ';
            error += item.meta.namespace_name;
            error += '/';
            error += item.meta.name;
        }
        error += ": ";
        error += field_error;
        return false;
    }
    if (item.meta.name.empty()) {
        error = std::string{kind_name(kind)} + ": metadata.name is required";
        return false;
    }
    out.push_back(std::move(item));
    return true;
}

}  // namespace

std::optional<CrdKind> crd_kind(std::string_view kind) {
    for (const CrdKind k :
         {CrdKind::identity, CrdKind::binding, CrdKind::exception, CrdKind::assigned}) {
        if (kind == kind_name(k)) {
            return k;
        }
    }
    return std::nullopt;
}

bool append_object(const json& object, CrdKind kind, CrdSnapshot& out, std::string& error) {
    switch (kind) {
        case CrdKind::identity:
            return append(object, kind, out.identities, error,
                          [](const json& o, AzureIdentity& id, FieldReader& r) {
                              return read_identity(o, id, r, "");
                          });
        case CrdKind::binding:
            return append(object, kind, out.bindings, error,
                          [](const json& o, AzureIdentityBinding& b, FieldReader& r) {
                              return read_binding(o, b, r, "");
                          });
        case CrdKind::exception:
            return append(object, kind, out.exceptions, error, read_exception);
        case CrdKind::assigned:
            return append(object, kind, out.assigned, error, read_assigned);
    }
    error = "unknown kind";
    return false;
}

}  // namespace nmid::crd_detail
