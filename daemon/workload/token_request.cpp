#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "nmid/cloud/token_json.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/workload/constants.hpp"
#include "nmid/workload/service_account_token.hpp"

namespace nmid::workload {
namespace {

using Json = nlohmann::json;

// RFC 1123 subdomain (ServiceAccount names): dot-separated labels, at most 253 bytes.
bool dns_subdomain(std::string_view s) {
    if (s.empty() || s.size() > 253) {
        return false;
    }
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = s.find('.', start);
        if (!dns_label(s.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
            return false;
        }
        if (dot == std::string_view::npos) {
            return true;
        }
        start = dot + 1;
    }
}

// Three base64url segments separated by dots: what a JWT looks like (nmid does not verify it:
// Azure AD does).
bool jwt_shaped(std::string_view token) {
    int dots = 0;
    for (const char c : token) {
        if (c == '.') {
            ++dots;
        } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_')) {
            return false;
        }
    }
    return dots == 2 && token.front() != '.' && token.back() != '.';
}

// The Status object's message ("" when the body is not one), on one line.
std::string status_message(std::string_view body) {
    const Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) {
        return std::string{body.substr(0, 200)};
    }
    const auto it = doc.find("message");
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

Errc errc_for_status(int status) {
    if (status == 429) {
        return Errc::upstream_throttled;
    }
    if (status >= 400 && status <= 499) {
        return Errc::upstream_refused;
    }
    return Errc::upstream_unavailable;
}

}  // namespace

Result<std::string> token_request_target(const PodInfo& pod) {
    const std::string_view account = service_account_of(pod);
    if (!dns_label(pod.namespace_name) || !dns_subdomain(account)) {
        return Errc::bad_request;
    }
    std::string target = "/api/v1/namespaces/";
    target += pod.namespace_name;
    target += "/serviceaccounts/";
    target += account;
    target += "/token";
    return target;
}

std::string token_request_body(const PodInfo& pod) {
    const Json body = {
        {"apiVersion", "authentication.k8s.io/v1"},
        {"kind", "TokenRequest"},
        {"spec",
         {{"audiences", Json::array({std::string{kTokenAudience}})},
          {"expirationSeconds", kTokenExpirationSeconds},
          {"boundObjectRef",
           {{"kind", "Pod"}, {"apiVersion", "v1"}, {"name", pod.name}, {"uid", pod.uid}}}}},
    };
    return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

SaTokenResult parse_token_request_response(const kube::Response& response, std::int64_t now) {
    if (response.status != 200 && response.status != 201) {
        std::chrono::seconds retry_after{0};
        if (response.status == 429) {
            retry_after =
                net::parse_retry_after(response.retry_after, WallTime{std::chrono::seconds{now}})
                    .value_or(std::chrono::seconds{0});
        }
        return fetch_error(errc_for_status(response.status), response.status,
                           "TokenRequest: HTTP " + std::to_string(response.status) + ": " +
                               status_message(response.body),
                           retry_after);
    }
    const Json doc = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    const Json* status = nullptr;
    if (doc.is_object()) {
        const auto it = doc.find("status");
        status = it != doc.end() && it->is_object() ? &*it : nullptr;
    }
    const auto bad = [&](std::string_view what) {
        return fetch_error(Errc::upstream_bad_payload, response.status,
                           "TokenRequest answer: " + std::string{what});
    };
    if (status == nullptr) {
        return bad("no status object");
    }
    const auto token = status->find("token");
    if (token == status->end() || !token->is_string()) {
        return bad("status.token missing");
    }
    const std::string& jwt = token->get_ref<const std::string&>();
    if (jwt.empty() || jwt.size() > kMaxServiceAccountToken || !jwt_shaped(jwt)) {
        return bad("status.token is not a JWT of at most 16 KiB");
    }
    const auto expiry = status->find("expirationTimestamp");
    if (expiry == status->end() || !expiry->is_string()) {
        return bad("status.expirationTimestamp missing");
    }
    const std::optional<std::int64_t> expires_on =
        cloud::rfc3339_to_unix(expiry->get_ref<const std::string&>());
    if (!expires_on || *expires_on <= now) {
        return bad("status.expirationTimestamp is not a future RFC 3339 time");
    }
    return ServiceAccountToken{.token = jwt, .expires_on = *expires_on, .issued_at = now};
}

ApiTokenRequester::ApiTokenRequester(kube::ApiServerClient& api, Clock& clock,
                                     std::function<void(int)> observe)
    : api_(api), clock_(clock), observe_(std::move(observe)) {}

boost::asio::awaitable<SaTokenResult> ApiTokenRequester::request(const PodInfo& pod,
                                                                 SteadyTime deadline) {
    Result<std::string> target = token_request_target(pod);
    if (!target) {
        co_return fetch_error(Errc::upstream_refused, 0,
                              "pod " + pod.namespace_name + "/" + pod.name +
                                  ": namespace or ServiceAccount name is not a valid name");
    }
    // Named, not temporaries in the co_await expression (g++ 12 destroys those twice).
    std::string body = token_request_body(pod);
    Result<kube::Response> response =
        co_await api_.post(std::move(*target), std::move(body), deadline);
    if (!response) {
        if (observe_) {
            observe_(0);
        }
        const Errc code = static_cast<Errc>(response.error().value());
        co_return fetch_error(
            code == Errc::timeout || code == Errc::cancelled ? code : Errc::upstream_unavailable, 0,
            "TokenRequest: " + response.error().message());
    }
    if (observe_) {
        observe_(response->status);
    }
    co_return parse_token_request_response(*response, clock_.unix_seconds());
}

}  // namespace nmid::workload
