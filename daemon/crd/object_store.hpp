#pragma once

// The objects of one watched resource, keyed by (namespace, name), as the API-server source
// holds them between a LIST and the events that follow. Private to the crd module.

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "nmid/crd/api_server_source.hpp"
#include "nmid/model/crd.hpp"

namespace nmid::crd_detail {

using ObjectKey = std::pair<std::string, std::string>;  // (namespace, name)

/// `metadata.namespace` (missing or empty: "default", as crd_json) and `metadata.name` of a
/// watched object; nullopt when it has no usable name. Pure; never throws.
[[nodiscard]] std::optional<ObjectKey> object_key(const nlohmann::json& object);

/// The objects of one resource. Typed per kind (make_store).
class ObjectStore {
public:
    virtual ~ObjectStore() = default;
    /// Inserts or replaces the object. An object that does not convert is removed instead
    /// (fail closed: a binding changed into something unreadable must stop granting) and
    /// false is returned with `error` set.
    virtual bool upsert(const nlohmann::json& object, std::string& error) = 0;
    virtual void erase(const ObjectKey& key) = 0;
    /// Replaces every object with `items` (an array); returns how many items were skipped
    /// because they did not convert, the first reason in `first_error`.
    virtual std::size_t replace(const nlohmann::json& items, std::string& first_error) = 0;
    virtual void append_to(CrdSnapshot& out) const = 0;
    [[nodiscard]] virtual std::size_t size() const = 0;
};

/// An empty store for `resource`'s kind.
[[nodiscard]] std::unique_ptr<ObjectStore> make_store(CrdResource resource);

}  // namespace nmid::crd_detail
