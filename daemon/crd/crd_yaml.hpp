#pragma once

// YAML documents to JSON for the CRD parser (crd_parse.cpp): YAML 1.2 core-schema scalars,
// bounded depth and node budget (aliases cannot expand without limit), never throws.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace nmid::crd_detail {

/// Appends every document of `text` to `documents` (a document that holds no node is null).
/// false with a one-line `error` on a YAML error or a limit. Never throws.
bool load_yaml(std::string_view text, std::vector<nlohmann::json>& documents, std::string& error);

}  // namespace nmid::crd_detail
