#pragma once

// Walks the filtered tree of a pod list, a pod or a watch event into nmid's model. Every
// check reports the field path; nothing here throws. Private to the pods module.

#include <string>
#include <string_view>

#include "filtering_sax.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/pods/pod_list_json.hpp"

namespace nmid::pods_detail {

class Walker {
public:
    explicit Walker(std::string* detail) : detail_(detail) {}

    Result<PodList> walk(const Json& root);
    // The list's metadata.resourceVersion: where a watch starts ("" when absent, as in the
    // kubelet's list). Called after walk() succeeded on the same root.
    Result<std::string> list_resource_version(const Json& root);
    Result<PodWatchEvent> event(const Json& root);

private:
    static const Json* field(const Json& obj, std::string_view key);
    static std::string expected(std::string_view what, const Json& got);
    boost::system::error_code fail(std::string_view path, const std::string& what);
    // Reads an optional string field into `out`; false (with the error set) on a wrong type.
    Result<void> opt_string(const Json& obj, std::string_view key, std::string_view path,
                            std::string& out);
    Result<void> add_ip(const std::string& text, std::string_view path, PodInfo& pod);

    // pod_item_json.cpp: one pod object.
    Result<void> parse_item(const Json& item, PodInfo& pod, bool& is_pod);
    Result<void> parse_owners(const Json& owners, PodInfo& pod);
    Result<void> parse_pod_ips(const Json& ips, PodInfo& pod);
    /// spec.volumes[].projected.sources[].serviceAccountToken into pod.token_projections.
    static void parse_token_projections(const Json& volumes, PodInfo& pod);
    static std::string bounded_string(const Json& obj, std::string_view key, std::size_t limit);
    Result<void> parse_container_statuses(const Json& statuses, PodInfo& pod);

    std::string* detail_;
    std::string item_;      ///< "items[3]" of the item being read
    std::string pod_name_;  ///< "namespace/name" once known
};

// Returns the error of a failed Result<void> step from the enclosing function.
// Returns the error of a failed Result<void> step from the enclosing function.
#define NMID_PODS_TRY(expr)          \
    do {                             \
        if (auto r_ = (expr); !r_) { \
            return r_.error();       \
        }                            \
    } while (false)

}  // namespace nmid::pods_detail
