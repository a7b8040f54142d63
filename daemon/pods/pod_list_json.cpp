#include "nmid/pods/pod_list_json.hpp"

#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "filtering_sax.hpp"
#include "pod_json_walker.hpp"

namespace nmid {

using pods_detail::Ctx;
using pods_detail::FilteringSax;
using pods_detail::Json;
using pods_detail::one_line;
using pods_detail::Walker;

namespace {

// Runs the filtering parser over `json` from `root_ctx`, then `walk` over the kept tree.
template <class T, class Walk>
Result<T> parse_with(std::string_view json, Ctx root_ctx, std::string* error_detail, Walk walk) {
    try {
        FilteringSax sax{root_ctx};
        if (!Json::sax_parse(json.begin(), json.end(), &sax, Json::input_format_t::json,
                             /*strict=*/true)) {
            if (error_detail != nullptr) {
                *error_detail = one_line(sax.error().empty() ? "invalid JSON" : sax.error());
            }
            return Errc::parse_error;
        }
        Walker walker{error_detail};
        return walk(walker, sax.root());
    } catch (const std::exception& e) {
        // Defensive: the parser reports errors through the SAX handler and the walker checks
        // every type before reading it, so nothing here is expected to throw.
        if (error_detail != nullptr) {
            *error_detail = one_line(e.what());
        }
        return Errc::parse_error;
    }
}

}  // namespace

Result<PodList> parse_pod_list(std::string_view json, std::string* error_detail) {
    return parse_with<PodList>(json, Ctx::root, error_detail,
                               [](Walker& w, const Json& root) { return w.walk(root); });
}

Result<PodListPage> parse_pod_list_page(std::string_view json, std::string* error_detail) {
    return parse_with<PodListPage>(json, Ctx::root, error_detail,
                                   [](Walker& w, const Json& root) -> Result<PodListPage> {
                                       auto list = w.walk(root);
                                       if (!list) {
                                           return list.error();
                                       }
                                       auto rv = w.list_resource_version(root);
                                       if (!rv) {
                                           return rv.error();
                                       }
                                       return PodListPage{std::move(*list), std::move(*rv)};
                                   });
}

Result<PodWatchEvent> parse_pod_watch_event(std::string_view line, std::string* error_detail) {
    return parse_with<PodWatchEvent>(line, Ctx::event, error_detail,
                                     [](Walker& w, const Json& root) { return w.event(root); });
}

Result<std::shared_ptr<const PodList>> PodListDecoder::decode(std::string_view body,
                                                              std::string* error_detail) {
    if (last_ && body == last_body_) {
        return last_;
    }
    auto parsed = parse_pod_list(body, error_detail);
    if (!parsed) {
        return parsed.error();
    }
    last_ = std::make_shared<const PodList>(std::move(*parsed));
    last_body_.assign(body);
    return last_;
}

}  // namespace nmid
