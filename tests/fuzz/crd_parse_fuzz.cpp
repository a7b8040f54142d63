// Fuzz target: aad-pod-identity objects from a `--crds-file` (crd/crd_parse, and through it
// crd/crd_json): JSON objects, arrays, Lists and YAML with several documents.
//
// Invariants:
// - nothing throws (parse_crds promises never to throw);
// - a snapshot is normalised: each vector sorted by (namespace, name) without duplicates, so
//   normalize_crds() changes nothing, and every object has a name and a namespace;
// - a failure comes with one line of detail (it is logged as is).

#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "fuzz_check.hpp"
#include "nmid/crd/crd_parse.hpp"

using nmid::fuzz::check;

namespace {

template <class T>
void check_sorted(const std::vector<T>& objects) {
    for (std::size_t i = 0; i < objects.size(); ++i) {
        const nmid::ObjectMeta& m = objects[i].meta;
        check(!m.name.empty() && !m.namespace_name.empty(), "object without name or namespace");
        if (i > 0) {
            const nmid::ObjectMeta& p = objects[i - 1].meta;
            check(std::tie(p.namespace_name, p.name) < std::tie(m.namespace_name, m.name),
                  "snapshot not sorted by (namespace, name) or with duplicates");
        }
    }
}

void fuzz_one(std::string_view text) {
    std::string detail;
    std::size_t skipped = 0;
    const nmid::Result<nmid::CrdSnapshot> snapshot = nmid::parse_crds(text, &detail, &skipped);
    if (!snapshot) {
        check(!detail.empty(), "a failure without detail");
        if (detail.find_first_of("\r\n") != std::string::npos) {
            std::fprintf(stderr, "detail: %s\n", detail.c_str());
            check(false, "detail of more than one line");
        }
        return;
    }
    check_sorted(snapshot->identities);
    check_sorted(snapshot->bindings);
    check_sorted(snapshot->exceptions);
    check_sorted(snapshot->assigned);
    nmid::CrdSnapshot again = *snapshot;
    nmid::normalize_crds(again);
    check(again.identities == snapshot->identities && again.bindings == snapshot->bindings &&
              again.exceptions == snapshot->exceptions && again.assigned == snapshot->assigned,
          "normalize_crds changes a parsed snapshot");
    check(nmid::parse_crds(text).has_value(), "parse_crds with and without detail disagree");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return nmid::fuzz::run_no_throw(data, size, fuzz_one);
}
