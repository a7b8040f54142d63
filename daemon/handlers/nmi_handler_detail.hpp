#pragma once

// Private to the handlers module: what nmi_handler.cpp and its route files (token_route.cpp,
// host_token_route.cpp, imds_proxy.cpp, identity_route.cpp) share.

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"
#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/http/message.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/token/token_cache.hpp"

namespace nmid::handlers {

/// The token query's parameters decoded in one pass: `values` view the query (or `decoded`).
struct TokenParams {
    std::string_view resource;
    std::string_view client_id;
    std::string_view resource_id;  ///< msi_res_id, else mi_res_id
    std::string_view object_id;
    bool bypass_cache = false;  ///< `bypass_cache=true` (any case): force a fresh fetch
};

/// Facts gathered while answering, written once into the audit line and the metrics. The
/// views point into the request or into what the context holds.
struct NmiHandler::Context {
    std::string_view route;
    std::string_view cache;
    std::string_view pod_namespace;
    std::string_view pod_name;
    std::string_view identity;  ///< redacted client id, or "excepted"
    std::string_view source;    ///< "workload-identity" for a workload identity pod
    std::string_view resource;
    TokenParams params;  ///< the token route's query parameters
    Errc error = Errc::ok;
    const boost::asio::ip::address* peer = nullptr;  ///< the request's source address
    PodInfoPtr pod;
    std::shared_ptr<const Prepared> prepared;
    std::shared_ptr<const WorkloadKey> workload_key;  ///< workload identity: the cache key
    std::string decoded;                              ///< query values that had to be decoded
};

/// A workload identity's cache key (its identity half, hashed) and the client id as the
/// audit line shows it: the same for every pod of one ServiceAccount snapshot entry.
struct NmiHandler::WorkloadKey {
    PreparedIdentity key;
    std::string redacted;
};

/// A (pod, query) resolved under one CRD snapshot, with what answering it from the cache
/// needs: built once and reused by every request of that pod until the snapshot changes.
struct NmiHandler::Prepared {
    CrdSnapshotPtr crds;  ///< keeps decision.identity alive
    identity::Decision decision;
    PreparedIdentity key;  ///< bound: the cache key's identity half, hashed
    std::string redacted;  ///< bound: the client id as the audit line shows it
};

namespace detail {

/// A request shape IMDS itself refuses, checked before any lookup on every route nmid answers
/// or forwards: `Metadata: true` missing (when required; SDK probes rely on this fast 400), or
/// an X-Forwarded-For field. The code and NMI's text, or nullopt.
struct HeaderRefusal {
    Errc code;
    std::string_view text;
};
inline std::optional<HeaderRefusal> header_refusal(const http::HttpRequest& request,
                                                   const HandlerSettings& settings) {
    if (settings.metadata_header_required && request.headers->get("Metadata") != "true") {
        return HeaderRefusal{Errc::metadata_header_missing,
                             "Required metadata header not specified"};
    }
    if (request.headers->contains("X-Forwarded-For")) {
        return HeaderRefusal{Errc::forwarded_for_present,
                             "Request must not contain an X-Forwarded-For header"};
    }
    return std::nullopt;
}

/// Who an upstream call is attributed to for per-pod fairness (issue 11.4): the caller's
/// source address, as for the per-pod connection cap, so a pod's token fetches and its
/// proxied or passed-through requests share one share of the IMDS budget. Built on a miss
/// only (never on a cache hit).
inline std::string requester_of(const NmiHandler::Context& ctx) {
    return ctx.peer != nullptr ? ctx.peer->to_string() : std::string{};
}

inline constexpr std::string_view kJson = "application/json; charset=utf-8";

/// The longest `resource` (decoded) nmid serves: longer is a 400 before any pod lookup or
/// cache access (a token cache keyed by hostile kilobytes is a memory attack, issue 11.5).
inline constexpr std::size_t kMaxResourceBytes = 2048;
inline constexpr std::string_view kResourceTooLong = "parameter resource is longer than 2048 bytes";

/// A 200 with a JSON body.
[[nodiscard]] http::HttpResponse json_ok(std::string body);

/// `resource`, `client_id`, `msi_res_id` (else `mi_res_id`), `object_id` and `bypass_cache`
/// of a token query.
[[nodiscard]] TokenParams parse_token_params(std::string_view query, std::string& decoded);

/// The error of a denial.
[[nodiscard]] Errc errc_for(identity::DenyReason reason);

/// NMI's message for a failed fetch, with the upstream's own answer when it sent one.
[[nodiscard]] std::string fetch_failure_text(const FetchError& e);

}  // namespace detail
}  // namespace nmid::handlers
