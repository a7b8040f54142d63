// Fuzz target: request-target routing and query parsing (http::route, query_params,
// query_param, query_param_views). The input is a request target as received.
//
// Invariants:
// - route() is total and its path and query are views into the target;
// - the query never decides the route: the target's path alone routes the same;
// - the three query readers agree on every name (nmid's names and the first key of the query)
//   and query_param_views() returns views into the query or into its `decoded` string.

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "nmid/http/router.hpp"

using nmid::fuzz::check;
using nmid::fuzz::within;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view target = nmid::fuzz::as_text(data, size);
    const nmid::http::RoutedTarget routed = nmid::http::route(target);
    check(within(routed.path, target) && within(routed.query, target), "views outside target");
    check(!nmid::http::to_string(routed.route).empty(), "route without a name");
    // A fragment makes the whole target malformed, which its path alone is not.
    if (!routed.path.empty() && !routed.canonical.has_fragment()) {
        check(nmid::http::route(routed.path).route == routed.route, "the query changed the route");
    }

    const std::string_view query = routed.query.empty() ? target : routed.query;
    // Names must be distinct: a repeated name receives the next occurrence (scan_query).
    const std::string_view first_key = query.substr(0, query.find_first_of("=&"));
    std::array<std::string_view, 8> names{"resource",  "client_id",   "msi_res_id",   "mi_res_id",
                                          "object_id", "api-version", "bypass_cache", "x-unused"};
    if (std::find(names.begin(), names.end(), first_key) == names.end()) {
        names.back() = first_key;
    }
    std::array<std::string, names.size()> values;
    nmid::http::query_params(query, names, values);
    std::array<std::string_view, names.size()> views;
    std::string decoded;
    nmid::http::query_param_views(query, names, views, decoded);
    for (std::size_t i = 0; i < names.size(); ++i) {
        check(values[i] == nmid::http::query_param(query, names[i]),
              "query_params and query_param disagree");
        check(views[i] == values[i], "query_param_views and query_params disagree");
        check(within(views[i], query) || within(views[i], decoded),
              "a query view outside the query and the decoded values");
    }
    return 0;
}
