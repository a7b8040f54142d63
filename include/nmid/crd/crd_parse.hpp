#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"
#include "nmid/model/crd.hpp"

namespace nmid {

/// Parses aad-pod-identity objects from a `--crds-file`: a JSON object, a JSON array, a
/// `List` or `<Kind>List` with `items` (as `kubectl get azureidentities,azureidentitybindings
/// -o json` prints), or YAML with one or more `---` documents (each any of the above).
/// Objects must be `apiVersion: aadpodidentity.k8s.io/v1` (items of a typed `<Kind>List` may
/// omit `apiVersion` and `kind`). AzureIdentity, AzureIdentityBinding,
/// AzurePodIdentityException and AzureAssignedIdentity are read; other kinds are skipped.
/// Field names are lower camel case, with the pre-1.6 capitalised names (`ClientID`,
/// `Selector`, ...) as a fallback. A missing namespace is "default". The result is
/// normalised (see `normalize_crds`). Pure and thread-safe; never throws.
/// Errors: Errc::parse_error (syntax, wrong field types, a known kind with another
/// apiVersion, a missing kind or metadata.name).
[[nodiscard]] Result<CrdSnapshot> parse_crds(std::string_view text);

/// As above; on failure writes one line saying where and why to `*error_detail` (if not
/// null), e.g. `document 2: AzureIdentity default/x: spec.type must be an integer`. On success
/// `*skipped_objects` (if not null) receives the number of objects of other kinds.
[[nodiscard]] Result<CrdSnapshot> parse_crds(std::string_view text, std::string* error_detail,
                                             std::size_t* skipped_objects = nullptr);

/// Sorts every vector of `snapshot` by (namespace, name), the order the resolver relies on,
/// and drops duplicates of the same (namespace, name), the one that came last winning.
/// Any producer of a CrdSnapshot (file, API server, tests) should call this before publishing.
void normalize_crds(CrdSnapshot& snapshot);

}  // namespace nmid
