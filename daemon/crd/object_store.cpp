#include "object_store.hpp"

#include <map>
#include <vector>

#include "crd_json.hpp"

namespace nmid::crd_detail {
namespace {

using json = nlohmann::json;

CrdKind crd_kind_of(CrdResource r) {
    switch (r) {
        case CrdResource::identities:
            return CrdKind::identity;
        case CrdResource::bindings:
            return CrdKind::binding;
        case CrdResource::exceptions:
            return CrdKind::exception;
        case CrdResource::assigned:
            return CrdKind::assigned;
    }
    return CrdKind::identity;
}

template <class T>
class TypedStore final : public ObjectStore {
public:
    TypedStore(CrdKind kind, std::vector<T> CrdSnapshot::*field) : kind_(kind), field_(field) {}

    bool upsert(const json& object, std::string& error) override {
        T item;
        if (!convert(object, item, error)) {
            if (const auto key = object_key(object)) {
                objects_.erase(*key);
            }
            return false;
        }
        ObjectKey key{item.meta.namespace_name, item.meta.name};
        objects_.insert_or_assign(std::move(key), std::move(item));
        return true;
    }

    void erase(const ObjectKey& key) override { objects_.erase(key); }

    std::size_t replace(const json& items, std::string& first_error) override {
        std::map<ObjectKey, T> fresh;
        std::size_t skipped = 0;
        for (const auto& object : items) {
            T item;
            std::string error;
            if (!convert(object, item, error)) {
                if (first_error.empty()) {
                    first_error = std::move(error);
                }
                ++skipped;
                continue;
            }
            ObjectKey key{item.meta.namespace_name, item.meta.name};
            fresh.insert_or_assign(std::move(key), std::move(item));
        }
        objects_ = std::move(fresh);
        return skipped;
    }

    void append_to(CrdSnapshot& out) const override {
        auto& vec = out.*field_;
        vec.reserve(vec.size() + objects_.size());
        for (const auto& [key, item] : objects_) {
            vec.push_back(item);
        }
    }

    [[nodiscard]] std::size_t size() const override { return objects_.size(); }

private:
    bool convert(const json& object, T& out, std::string& error) const {
        CrdSnapshot scratch;
        if (!crd_detail::append_object(object, kind_, scratch, error)) {
            return false;
        }
        out = std::move((scratch.*field_).back());
        return true;
    }

    CrdKind kind_;
    std::vector<T> CrdSnapshot::*field_;
    std::map<ObjectKey, T> objects_;
};

}  // namespace

std::optional<ObjectKey> object_key(const json& object) {
    if (!object.is_object()) {
        return std::nullopt;
    }
    const auto md = object.find("metadata");
    if (md == object.end() || !md->is_object()) {
        return std::nullopt;
    }
    const auto name = md->find("name");
    if (name == md->end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
        return std::nullopt;
    }
    // As crd_json: a missing namespace is "default".
    std::string ns = "default";
    const auto it = md->find("namespace");
    if (it != md->end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
        ns = it->get_ref<const std::string&>();
    }
    return ObjectKey{std::move(ns), name->get_ref<const std::string&>()};
}

std::unique_ptr<ObjectStore> make_store(CrdResource r) {
    const CrdKind kind = crd_kind_of(r);
    switch (r) {
        case CrdResource::identities:
            return std::make_unique<TypedStore<AzureIdentity>>(kind, &CrdSnapshot::identities);
        case CrdResource::bindings:
            return std::make_unique<TypedStore<AzureIdentityBinding>>(kind, &CrdSnapshot::bindings);
        case CrdResource::exceptions:
            return std::make_unique<TypedStore<AzurePodIdentityException>>(
                kind, &CrdSnapshot::exceptions);
        case CrdResource::assigned:
            return std::make_unique<TypedStore<AzureAssignedIdentity>>(kind,
                                                                       &CrdSnapshot::assigned);
    }
    return nullptr;
}

}  // namespace nmid::crd_detail
