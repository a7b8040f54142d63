#pragma once

// JSON -> model conversion of the aadpodidentity.k8s.io/v1 kinds, shared by the file parser
// and (later) the API-server list/watch source: both see the same JSON objects.

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "nmid/model/crd.hpp"

namespace nmid::crd_detail {

inline constexpr std::string_view kApiVersion = "aadpodidentity.k8s.io/v1";

enum class CrdKind { identity, binding, exception, assigned };

/// The kinds nmid reads (`AzureIdentity`, ...); nullopt for any other kind.
[[nodiscard]] std::optional<CrdKind> crd_kind(std::string_view kind);

/// Converts one object of `kind` (lower camel case fields, pre-1.6 capitalised names as a
/// fallback; JSON null counts as absent; a missing namespace is "default") and appends it to
/// the matching vector of `out`. `apiVersion` and `kind` are not looked at here. Never throws.
/// On failure returns false and sets `error` to one line such as
/// `AzureIdentity default/x: spec.type must be an integer`.
[[nodiscard]] bool append_object(const nlohmann::json& object, CrdKind kind, CrdSnapshot& out,
                                 std::string& error);

}  // namespace nmid::crd_detail
