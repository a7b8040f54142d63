#include "support/fake_federated_aad.hpp"

#include <nlohmann/json.hpp>
#include <regex>

#include "support/base64.hpp"
#include "support/fake_aad.hpp"
#include "support/jwt_rs256.hpp"

namespace nmid::test {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kJwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

bool audience_has(const Json& aud, const std::string& wanted) {
    if (aud.is_string()) {
        return aud.get<std::string>() == wanted;
    }
    if (aud.is_array()) {
        for (const Json& a : aud) {
            if (a.is_string() && a.get<std::string>() == wanted) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace

FakeFederatedAad::FakeFederatedAad(boost::asio::io_context& ioc, std::function<std::int64_t()> now,
                                   const FakeTlsOptions& tls, std::string host)
    : now_(std::move(now)),
      host_(std::move(host)),
      https_(true),
      server_(std::make_unique<FakeHttpServer>(
          ioc, [this](const FakeRequest& r) { return handle(r); }, "127.0.0.1", tls)) {}

FakeFederatedAad::FakeFederatedAad(boost::asio::io_context& ioc, std::function<std::int64_t()> now)
    : now_(std::move(now)),
      host_("127.0.0.1"),
      https_(false),
      server_(std::make_unique<FakeHttpServer>(
          ioc, [this](const FakeRequest& r) { return handle(r); })) {}

std::string FakeFederatedAad::base_url() const {
    return (https_ ? "https://" : "http://") + host_ + ":" + std::to_string(server_->port()) + "/";
}

void FakeFederatedAad::trust_issuer(std::string issuer, std::string public_pem) {
    issuers_[std::move(issuer)] = std::move(public_pem);
}

void FakeFederatedAad::add_federated_credential(std::string client_id, std::string issuer,
                                                std::string subject, std::string audience) {
    credentials_.push_back(
        {std::move(client_id), std::move(issuer), std::move(subject), std::move(audience)});
}

FakeResponse FakeFederatedAad::refuse(FederatedCall& call, int status, const std::string& error,
                                      const std::string& code, const std::string& description) {
    call.status = status;
    call.error_code = code;
    calls_.push_back(call);
    const std::string text = code + ": " + description +
                             " Trace ID: 00000000-0000-0000-0000-000000000001 Correlation ID: "
                             "00000000-0000-0000-0000-000000000002 Timestamp: 2026-12-06 "
                             "10:00:00Z";
    return FakeResponse{.status = status,
                        .headers = {{"Content-Type", "application/json; charset=utf-8"}},
                        .body = Json{{"error", error},
                                     {"error_description", text},
                                     {"error_codes", Json::array({std::stoi(code.substr(6))})},
                                     {"timestamp", "2026-12-06 10:00:00Z"},
                                     {"trace_id", "00000000-0000-0000-0000-000000000001"},
                                     {"correlation_id", "00000000-0000-0000-0000-000000000002"},
                                     {"error_uri", "https://login.microsoftonline.com/error?code=" +
                                                       code.substr(6)}}
                                    .dump()};
}

FakeResponse FakeFederatedAad::handle(const FakeRequest& request) {
    static const std::regex token_path{R"(^/([A-Za-z0-9.-]+)/oauth2/v2\.0/token$)"};
    std::smatch m;
    FederatedCall call;
    if (request.method != "POST" || !std::regex_match(request.target, m, token_path)) {
        return refuse(call, 404, "invalid_request", "AADSTS90002", "Unknown endpoint.");
    }
    call.tenant = m[1].str();
    call.form = parse_form(request.body);
    const auto field = [&](const std::string& k) {
        const auto it = call.form.find(k);
        return it == call.form.end() ? std::string{} : it->second;
    };
    if (field("grant_type") != "client_credentials" ||
        field("client_assertion_type") != kJwtBearer || field("client_id").empty()) {
        return refuse(call, 400, "invalid_request", "AADSTS900144",
                      "The request body must contain the following parameter: 'grant_type', "
                      "'client_id' and a jwt-bearer client assertion.");
    }
    const std::string scope = field("scope");
    if (scope.size() <= 9 || !scope.ends_with("/.default") ||
        scope.find(' ') != std::string::npos) {
        return refuse(call, 400, "invalid_scope", "AADSTS1002012",
                      "The provided value for scope " + scope + " is not valid.");
    }
    const std::string assertion = field("client_assertion");
    // Read iss/sub before verifying, so a refusal can echo them as Azure AD does.
    const auto dot1 = assertion.find('.');
    const auto dot2 = dot1 == std::string::npos ? dot1 : assertion.find('.', dot1 + 1);
    const auto unverified = dot2 == std::string::npos
                                ? std::nullopt
                                : base64url_decode(assertion.substr(dot1 + 1, dot2 - dot1 - 1));
    const Json claims = unverified ? Json::parse(*unverified, nullptr, false) : Json{};
    if (!claims.is_object()) {
        return refuse(call, 400, "invalid_request", "AADSTS50027",
                      "JWT token is invalid or malformed.");
    }
    call.issuer = claims.value("iss", "");
    call.subject = claims.value("sub", "");
    const auto key = issuers_.find(call.issuer);
    if (key == issuers_.end() || !verify_rs256(assertion, key->second)) {
        return refuse(call, 400, "invalid_client", "AADSTS700211",
                      "No matching federated identity record found for presented assertion "
                      "issuer '" +
                          call.issuer + "'.");
    }
    const std::int64_t now = now_();
    if (!claims.contains("exp") || !claims["exp"].is_number_integer() ||
        claims["exp"].get<std::int64_t>() <= now ||
        claims.value("nbf", std::int64_t{0}) > now + 300) {
        return refuse(call, 401, "invalid_client", "AADSTS700024",
                      "Client assertion is not within its valid time range.");
    }
    bool federated = false;
    for (const Credential& c : credentials_) {
        if (c.client_id == field("client_id") && c.issuer == call.issuer &&
            c.subject == call.subject && audience_has(claims["aud"], c.audience)) {
            federated = true;
        }
    }
    if (!federated) {
        return refuse(call, 400, "invalid_request", "AADSTS70021",
                      "No matching federated identity record found for presented assertion. "
                      "Assertion Issuer: '" +
                          call.issuer + "'. Assertion Subject: '" + call.subject +
                          "'. Assertion Audience: '" +
                          (claims["aud"].is_array() && !claims["aud"].empty()
                               ? claims["aud"][0].get<std::string>()
                               : claims.value("aud", std::string{})) +
                          "'.");
    }
    call.status = 200;
    calls_.push_back(call);
    const std::string resource = scope.substr(0, scope.size() - 9);
    const Json access = {
        {"aud", resource},    {"appid", field("client_id")}, {"azp", field("client_id")},
        {"tid", call.tenant}, {"sub", call.subject},         {"oid", "oid-" + field("client_id")},
        {"iat", now},         {"exp", now + token_lifetime}};
    const std::string token = base64_encode(R"({"alg":"none","typ":"JWT"})", true, false) + "." +
                              base64_encode(access.dump(), true, false) + ".fake";
    return FakeResponse{.status = 200,
                        .headers = {{"Content-Type", "application/json; charset=utf-8"}},
                        .body = Json{
                            {"token_type", "Bearer"},
                            {"expires_in", token_lifetime},
                            {"ext_expires_in", token_lifetime},
                            {"access_token",
                             token}}.dump()};
}

}  // namespace nmid::test
