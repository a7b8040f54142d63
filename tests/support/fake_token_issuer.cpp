#include "support/fake_token_issuer.hpp"

#include <ctime>
#include <regex>

#include "support/kube_status.hpp"

namespace nmid::test {
namespace {

using Json = nlohmann::json;

FakeResponse status(int code, const std::string& reason, const std::string& message) {
    return kube_status(code, reason, message);
}

std::string rfc3339(std::int64_t unix) {
    const std::time_t t = unix;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char out[32];
    std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

}  // namespace

FakeApiServerOptions with_service_accounts(FakeApiServerOptions options) {
    options.resources.push_back({.group = "",
                                 .version = "v1",
                                 .plural = "serviceaccounts",
                                 .kind = "ServiceAccount",
                                 .singular = "serviceaccount",
                                 .namespaced = true,
                                 .short_names = {"sa"}});
    return options;
}

FakeTokenIssuer::FakeTokenIssuer(std::function<std::int64_t()> now, std::string issuer)
    : now_(std::move(now)), issuer_(std::move(issuer)) {}

FakeHttpServer::Handler FakeTokenIssuer::wrap(FakeHttpServer::Handler api_handler) {
    return [this, api_handler = std::move(api_handler)](const FakeRequest& request) {
        static const std::regex token_path{
            R"(^/api/v1/namespaces/([^/?]+)/serviceaccounts/([^/?]+)/token$)"};
        std::smatch m;
        if (request.method == "POST" && std::regex_match(request.target, m, token_path)) {
            return handle(request, m[1].str(), m[2].str());
        }
        return api_handler(request);
    };
}

FakeResponse FakeTokenIssuer::handle(const FakeRequest& request, const std::string& ns,
                                     const std::string& sa) {
    TokenRequestCall call{ns, sa, Json::parse(request.body, nullptr, false), 0};
    const auto answer = [&](FakeResponse r) {
        call.status = r.status;
        calls_.push_back(std::move(call));
        return r;
    };
    if (api_ == nullptr || !call.body.is_object() || !call.body.contains("spec")) {
        return answer(status(400, "BadRequest", "TokenRequest body is not a TokenRequest"));
    }
    const auto account = api_->object("serviceaccounts", ns, sa);
    if (!account) {
        return answer(status(404, "NotFound", "serviceaccounts \"" + sa + "\" not found"));
    }
    const Json& spec = call.body["spec"];
    const std::int64_t asked = spec.value("expirationSeconds", std::int64_t{3600});
    if (asked < 600) {
        return answer(status(422, "Invalid",
                             "TokenRequest.authentication.k8s.io \"" + sa +
                                 "\" is invalid: spec.expirationSeconds: Invalid value: may not "
                                 "specify a duration less than 10 minutes"));
    }
    Json kubernetes = {{"namespace", ns},
                       {"serviceaccount", {{"name", sa}, {"uid", (*account)["metadata"]["uid"]}}}};
    if (spec.contains("boundObjectRef")) {
        const Json& ref = spec["boundObjectRef"];
        if (ref.value("kind", "") != "Pod") {
            return answer(
                status(400, "BadRequest",
                       "cannot bind token to object of type " + ref.value("kind", std::string{})));
        }
        const std::string pod_name = ref.value("name", "");
        const auto pod = api_->object("pods", ns, pod_name);
        if (!pod) {
            return answer(status(404, "NotFound", "pods \"" + pod_name + "\" not found"));
        }
        const std::string uid = (*pod)["metadata"].value("uid", "");
        if (!ref.value("uid", "").empty() && ref.value("uid", "") != uid) {
            return answer(status(409, "Conflict",
                                 "the UID in the bound object reference (" + ref.value("uid", "") +
                                     ") does not match the UID in record. The object might have "
                                     "been deleted and then recreated"));
        }
        std::string pod_sa =
            pod->contains("spec") ? (*pod)["spec"].value("serviceAccountName", "") : std::string{};
        if (pod_sa.empty()) {
            pod_sa = "default";
        }
        if (pod_sa != sa) {
            return answer(status(400, "BadRequest",
                                 "cannot bind token for serviceaccount \"" + sa +
                                     "\" to pod running "
                                     "with different serviceaccount name."));
        }
        kubernetes["pod"] = {{"name", pod_name}, {"uid", uid}};
    }
    const std::int64_t now = now_();
    const std::int64_t granted = std::min(asked, max_expiration);
    const Json audiences = spec.contains("audiences") && !spec["audiences"].empty()
                               ? spec["audiences"]
                               : Json::array({issuer_});
    const Json claims = {{"aud", audiences},
                         {"exp", now + granted},
                         {"iat", now},
                         {"nbf", now},
                         {"iss", issuer_},
                         {"jti", "fake-jti-" + std::to_string(next_jti_++)},
                         {"kubernetes.io", kubernetes},
                         {"sub", "system:serviceaccount:" + ns + ":" + sa}};
    Json out = call.body;
    out["spec"]["expirationSeconds"] = granted;
    out["status"] = {{"token", signer_.sign(claims.dump())},
                     {"expirationTimestamp", rfc3339(now + granted)}};
    return answer(FakeResponse{
        .status = 201, .headers = {{"Content-Type", "application/json"}}, .body = out.dump()});
}

std::string FakeTokenIssuer::mint(const std::string& ns, const std::string& sa,
                                  const std::string& pod_name, const std::string& pod_uid,
                                  const std::string& audience, std::int64_t lifetime) {
    const std::int64_t now = now_();
    const Json claims = {{"aud", Json::array({audience})},
                         {"exp", now + lifetime},
                         {"iat", now},
                         {"nbf", now},
                         {"iss", issuer_},
                         {"jti", "fake-jti-" + std::to_string(next_jti_++)},
                         {"kubernetes.io",
                          {{"namespace", ns},
                           {"pod", {{"name", pod_name}, {"uid", pod_uid}}},
                           {"serviceaccount", {{"name", sa}, {"uid", "sa-uid"}}}}},
                         {"sub", "system:serviceaccount:" + ns + ":" + sa}};
    return signer_.sign(claims.dump());
}

FakeClusterApi::FakeClusterApi(boost::asio::io_context& ioc, std::function<std::int64_t()> now)
    : issuer_(std::move(now)),
      api_(std::make_unique<FakeApiServer>(with_service_accounts(), [&](FakeHttpServer::Handler h) {
          return std::make_unique<FakeHttpServer>(ioc, issuer_.wrap(std::move(h)));
      })) {
    issuer_.attach(*api_);
}

}  // namespace nmid::test
