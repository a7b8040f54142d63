#include "nmid/cloud/aad_token_source.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "nmid/cloud/secret_store.hpp"
#include "support/fake_aad.hpp"
#include "support/manual_clock.hpp"
#include "support/test_ca.hpp"

namespace nmid::cloud {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeResponse;
using test::Pkcs12Kind;
using test::TestCertificate;

constexpr const char* kClient = "9a0b1c2d-0000-4000-8000-000000000001";
constexpr const char* kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
constexpr const char* kResource = "https://vault.azure.net";
// Characters a form must encode.
constexpr const char* kClientSecret = "s3cr&t=+/ %x~";

const TestCertificate& rsa_cert() {
    static const TestCertificate cert = TestCertificate::rsa("nmid-aad-unit");
    return cert;
}

/// In-test SecretStore: answers from a map (absent: not_found), counts reads and
/// invalidations.
class FakeSecretStore final : public SecretStore {
public:
    asio::awaitable<SecretResult> get(const SecretRef& ref, SteadyTime) override {
        ++gets;
        const auto it = secrets.find({ref.namespace_name, ref.name});
        if (it == secrets.end()) {
            co_return SecretError{
                .code = SecretErrc::not_found,
                .status = 404,
                .message = "secret " + ref.namespace_name + "/" + ref.name + " not found"};
        }
        co_return it->second;
    }
    void invalidate(const SecretRef& ref) override { invalidated.push_back(ref); }

    void put(const std::string& name, std::map<std::string, std::string, std::less<>> data) {
        secrets.insert_or_assign(
            std::pair{std::string{"default"}, name},
            SecretResult{std::make_shared<const Secret>(Secret{std::move(data)})});
    }

    std::map<std::pair<std::string, std::string>, SecretResult> secrets;
    int gets = 0;
    std::vector<SecretRef> invalidated;
};

class AadTokenSourceTest : public ::testing::Test {
protected:
    AadTokenSourceTest() {
        aad_.add_secret_client(kClient, kClientSecret);
        store_.put("sp-secret", {{"clientSecret", kClientSecret}});
        store_.put("sp-cert", {{"certificate", rsa_cert().pkcs12("pfx-pw", Pkcs12Kind::modern)},
                               {"password", "pfx-pw"}});
    }

    TokenRequest request(int type, std::string secret_name, const std::string& ad_endpoint = {}) {
        TokenRequest r;
        r.identity.type = type;
        r.identity.client_id = kClient;
        r.identity.tenant_id = kTenant;
        r.identity.ad_endpoint = ad_endpoint.empty() ? aad_.ad_endpoint() : ad_endpoint;
        r.identity.secret = SecretRef{"default", std::move(secret_name)};
        r.resource = kResource;
        return r;
    }

    using Outcome = std::shared_ptr<std::optional<FetchResult>>;

    Outcome start(TokenRequest request, SteadyTime deadline, asio::cancellation_slot slot = {}) {
        auto out = std::make_shared<std::optional<FetchResult>>();
        AadTokenSource& source = other_source_ != nullptr ? *other_source_ : source_;
        asio::co_spawn(
            ioc_,
            [&source, request = std::move(request), deadline]() -> asio::awaitable<FetchResult> {
                co_return co_await source.fetch(request, deadline);
            },
            asio::bind_cancellation_slot(slot, [out](const std::exception_ptr& e, FetchResult r) {
                if (e) {
                    std::rethrow_exception(e);
                }
                out->emplace(std::move(r));
            }));
        return out;
    }

    FetchResult fetch(TokenRequest request,
                      SteadyTime deadline = std::chrono::steady_clock::now() + 10s) {
        auto out = start(std::move(request), deadline);
        EXPECT_TRUE(test::run_until(ioc_, [&] { return out->has_value(); }));
        if (!out->has_value()) {
            return FetchError{};
        }
        return std::move(**out);
    }

    asio::io_context ioc_;
    test::ManualClock clock_;  // wall time 1'700'000'000
    test::FakeAad aad_{ioc_, [this] { return clock_.unix_seconds(); }};
    FakeSecretStore store_;
    AadSettings settings_{.connect_timeout = 2000ms,
                          .pool_size = 2,
                          .max_response_body = std::size_t{64} * 1024,
                          .max_origins = 4,
                          .assertion_lifetime = 600s,
                          .user_agent = "nmid-test/1.0"};
    AadTokenSource source_{ioc_.get_executor(), store_, clock_, settings_};
    AadTokenSource* other_source_ = nullptr;  ///< fetch() with this one instead when set
};

FakeResponse answer(int status, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    FakeResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
    return r;
}

TEST_F(AadTokenSourceTest, SecretIdentitySendsTheFormNmiSends) {
    const auto r = fetch(request(1, "sp-secret"));
    ASSERT_TRUE(r.has_value()) << r.error().upstream_body;
    EXPECT_EQ(r->access_token, std::string{"aad."} + kTenant + "." + kClient + ".1");
    EXPECT_EQ(r->resource, kResource);
    EXPECT_EQ(r->expires_on, 1'700'000'000 + 3599);
    EXPECT_EQ(r->expires_in, 3599);
    EXPECT_EQ(r->not_before, 1'700'000'000 - 300);

    ASSERT_EQ(aad_.calls().size(), 1U);
    const auto& call = aad_.calls()[0];
    EXPECT_EQ(call.rejection, "");
    EXPECT_EQ(call.tenant, kTenant);
    const auto& raw = aad_.server().received()[0];
    EXPECT_EQ(raw.method, "POST");
    EXPECT_EQ(raw.target, std::string{"/"} + kTenant + "/oauth2/token?api-version=1.0");
    EXPECT_EQ(raw.header("Content-Type"), "application/x-www-form-urlencoded");
    EXPECT_EQ(raw.header("User-Agent"), "nmid-test/1.0");
    EXPECT_EQ(raw.header("Host"), "127.0.0.1:" + std::to_string(aad_.port()));
    // Sorted keys as Go's url.Values.Encode; RFC 3986 percent-encoding.
    EXPECT_EQ(raw.body, std::string{"client_id="} + kClient +
                            "&client_secret=s3cr%26t%3D%2B%2F%20%25x~"
                            "&grant_type=client_credentials"
                            "&resource=https%3A%2F%2Fvault.azure.net");
    EXPECT_EQ(store_.gets, 1);
}

TEST_F(AadTokenSourceTest, SecretIdentityTakesClientSecretAmongSeveralKeys) {
    store_.put("sp-secret", {{"clientSecret", kClientSecret}, {"note", "other"}});
    EXPECT_TRUE(fetch(request(1, "sp-secret")).has_value());
    EXPECT_EQ(aad_.calls().at(0).form.at("client_secret"), kClientSecret);
}

TEST_F(AadTokenSourceTest, AmbiguousOrEmptySecretsAreRefusedBeforeAad) {
    store_.put("two", {{"a", "x"}, {"b", "y"}});
    store_.put("none", {});
    for (const char* name : {"two", "none"}) {
        const auto r = fetch(request(1, name));
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().code, Errc::identity_unsupported) << name;
        EXPECT_NE(r.error().upstream_body.find(std::string{"default/"} + name), std::string::npos);
    }
    EXPECT_TRUE(aad_.calls().empty());
}

TEST_F(AadTokenSourceTest, CertificateIdentitySendsAnAssertionAadVerifies) {
    aad_.add_certificate_client(kClient, rsa_cert().der());
    const auto r = fetch(request(2, "sp-cert"));
    ASSERT_TRUE(r.has_value()) << r.error().upstream_body;
    ASSERT_EQ(aad_.calls().size(), 1U);
    const auto& call = aad_.calls()[0];
    EXPECT_EQ(call.rejection, "");  // signature, x5t, x5c, aud, iss, sub, nbf, exp all checked
    EXPECT_EQ(call.status, 200);
    EXPECT_EQ(call.form.count("client_secret"), 0U);
    EXPECT_EQ(call.form.at("client_assertion_type"),
              "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    const auto claims = nlohmann::json::parse(call.assertion_claims);
    // aud is the exact token URL adal uses, query included.
    EXPECT_EQ(claims["aud"], aad_.ad_endpoint() + kTenant + "/oauth2/token?api-version=1.0");
    EXPECT_EQ(claims["nbf"], 1'700'000'000);
    EXPECT_EQ(claims["exp"], 1'700'000'600);
    const auto& body = aad_.server().received()[0].body;
    EXPECT_EQ(body.rfind("client_assertion=", 0), 0U);
    EXPECT_NE(
        body.find(std::string{"&client_assertion_type="
                              "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                              "&client_id="} +
                  kClient + "&grant_type=client_credentials&resource="),
        std::string::npos);
}

TEST_F(AadTokenSourceTest, CertificateIdentityWorksWithALegacyPfx) {
    const auto legacy = rsa_cert().pkcs12("pfx-pw", Pkcs12Kind::legacy);
    if (legacy.empty()) {
        GTEST_SKIP() << "OpenSSL legacy provider not installed";
    }
    store_.put("sp-legacy", {{"certificate", legacy}, {"password", "pfx-pw"}});
    aad_.add_certificate_client(kClient, rsa_cert().der());
    const auto r = fetch(request(2, "sp-legacy"));
    ASSERT_TRUE(r.has_value()) << r.error().upstream_body;
    EXPECT_EQ(aad_.calls().at(0).rejection, "");
}

TEST_F(AadTokenSourceTest, AssertionFromAnotherCertificateIsRefusedAndTheSecretReRead) {
    aad_.add_certificate_client(kClient, TestCertificate::rsa("someone-else").der());
    const auto r = fetch(request(2, "sp-cert"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::upstream_refused);
    EXPECT_EQ(r.error().upstream_status, 401);
    EXPECT_NE(r.error().upstream_body.find("invalid_client"), std::string::npos);
    EXPECT_NE(aad_.calls().at(0).rejection, "");
    ASSERT_EQ(store_.invalidated.size(), 1U);
    EXPECT_EQ(store_.invalidated[0], (SecretRef{"default", "sp-cert"}));
}

TEST_F(AadTokenSourceTest, NonRsaOrUndecodableCertificatesAreUnsupported) {
    store_.put("ec", {{"certificate", TestCertificate::ec().pkcs12("pw", Pkcs12Kind::modern)},
                      {"password", "pw"}});
    store_.put("badpw", {{"certificate", rsa_cert().pkcs12("pw", Pkcs12Kind::modern)},
                         {"password", "nope"}});
    store_.put("nocert", {{"password", "pw"}});
    for (const char* name : {"ec", "badpw", "nocert"}) {
        const auto r = fetch(request(2, name));
        ASSERT_FALSE(r.has_value()) << name;
        EXPECT_EQ(r.error().code, Errc::identity_unsupported) << name;
    }
    EXPECT_NE(fetch(request(2, "ec")).error().upstream_body.find("not RSA"), std::string::npos);
    EXPECT_TRUE(aad_.calls().empty());
}

TEST_F(AadTokenSourceTest, MapsAadAnswersToFetchErrors) {
    struct Case {
        FakeResponse response;
        Errc code;
        int status;
        std::chrono::seconds retry_after;
        bool body_kept;
    };
    const auto aad400 = test::aad_error(400, "invalid_resource", 500011, "AADSTS500011: no");
    const auto aad401 = test::aad_error(401, "invalid_client", 7000215, "AADSTS7000215: bad");
    const Case cases[] = {
        {aad400, Errc::upstream_refused, 400, 0s, true},
        {aad401, Errc::upstream_refused, 401, 0s, true},
        {answer(403, "{}"), Errc::upstream_refused, 403, 0s, true},
        {answer(404, "{}"), Errc::upstream_refused, 404, 0s, true},
        {answer(408, "{}"), Errc::upstream_unavailable, 408, 0s, true},
        {answer(429, R"({"error":"throttled"})", {{"Retry-After", "7"}}), Errc::upstream_throttled,
         429, 7s, true},
        {answer(500, "{}"), Errc::upstream_unavailable, 500, 0s, true},
        {answer(503, "{}"), Errc::upstream_unavailable, 503, 0s, true},
        {answer(302, ""), Errc::upstream_unavailable, 302, 0s, true},
        {answer(200, R"({"access_token":"","refresh_token":"leaky"})"), Errc::upstream_bad_payload,
         200, 0s, false},
        {answer(200, "not json"), Errc::upstream_bad_payload, 200, 0s, false},
    };
    for (const auto& c : cases) {
        aad_.script(c.response);
        const auto r = fetch(request(1, "sp-secret"));
        ASSERT_FALSE(r.has_value()) << c.response.status;
        EXPECT_EQ(r.error().code, c.code) << c.response.status;
        EXPECT_EQ(r.error().upstream_status, c.status) << c.response.status;
        EXPECT_EQ(r.error().retry_after, c.retry_after) << c.response.status;
        if (c.body_kept) {
            EXPECT_EQ(r.error().upstream_body, c.response.body) << c.response.status;
        } else {
            EXPECT_EQ(r.error().upstream_body.find("leaky"), std::string::npos);
        }
    }
}

TEST_F(AadTokenSourceTest, TransportFailureIsUnavailable) {
    // First request of the fixture: no pooled connection, so no replacement attempt.
    FakeResponse eof;
    eof.close_without_response = true;
    aad_.script(eof);
    const auto r = fetch(request(1, "sp-secret"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::upstream_unavailable);
    EXPECT_EQ(r.error().upstream_status, 0);
    EXPECT_EQ(aad_.server().requests(), 1U);
}

TEST_F(AadTokenSourceTest, AdEndpointWithAPathIsHonoured) {
    test::FakeAad other{ioc_, [this] { return clock_.unix_seconds(); }, "/adfs/"};
    other.add_certificate_client(kClient, rsa_cert().der());
    other.add_secret_client(kClient, kClientSecret);
    EXPECT_EQ(other.ad_endpoint(), "http://127.0.0.1:" + std::to_string(other.port()) + "/adfs/");
    ASSERT_TRUE(fetch(request(1, "sp-secret", other.ad_endpoint())).has_value());
    ASSERT_TRUE(fetch(request(2, "sp-cert", other.ad_endpoint())).has_value());
    ASSERT_EQ(other.calls().size(), 2U);
    EXPECT_EQ(other.calls()[0].target,
              std::string{"/adfs/"} + kTenant + "/oauth2/token?api-version=1.0");
    EXPECT_EQ(other.calls()[1].rejection, "");
    EXPECT_EQ(nlohmann::json::parse(other.calls()[1].assertion_claims)["aud"],
              other.ad_endpoint() + kTenant + "/oauth2/token?api-version=1.0");
    EXPECT_TRUE(aad_.calls().empty());
    // Back to the first origin: each origin has its own client.
    ASSERT_TRUE(fetch(request(1, "sp-secret")).has_value());
    EXPECT_EQ(aad_.calls().size(), 1U);
}

TEST_F(AadTokenSourceTest, TenantComesFromTheRequest) {
    auto r = request(1, "sp-secret");
    r.identity.tenant_id = "aux-tenant.onmicrosoft.com";
    ASSERT_TRUE(fetch(r).has_value());
    EXPECT_EQ(aad_.calls().at(0).tenant, "aux-tenant.onmicrosoft.com");
}

TEST_F(AadTokenSourceTest, RefusesBadIdentitiesWithoutAnyRead) {
    auto bad_tenant = request(1, "sp-secret");
    bad_tenant.identity.tenant_id = "a/b";
    auto bad_endpoint = request(1, "sp-secret", "ftp://aad/");
    auto msi = request(0, "sp-secret");
    auto unknown = request(3, "sp-secret");
    for (const auto& r : {bad_tenant, bad_endpoint, msi, unknown}) {
        const auto got = fetch(r);
        ASSERT_FALSE(got.has_value());
        EXPECT_EQ(got.error().code, Errc::identity_unsupported) << r.identity.ad_endpoint;
    }
    EXPECT_EQ(store_.gets, 0);
    EXPECT_TRUE(aad_.calls().empty());
}

TEST_F(AadTokenSourceTest, SecretReadFailuresAreUnavailableWithTheReason) {
    const auto r = fetch(request(1, "missing"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::upstream_unavailable);
    EXPECT_EQ(r.error().upstream_status, 0);
    EXPECT_EQ(r.error().upstream_body, "secret default/missing not found");
    store_.secrets.insert_or_assign(
        std::pair{std::string{"default"}, std::string{"slow"}},
        SecretResult{SecretError{.code = SecretErrc::timeout, .status = 0, .message = "t"}});
    EXPECT_EQ(fetch(request(1, "slow")).error().code, Errc::timeout);
    EXPECT_TRUE(aad_.calls().empty());
}

TEST_F(AadTokenSourceTest, PassedDeadlineIsTimeout) {
    const auto r = fetch(request(1, "sp-secret"), std::chrono::steady_clock::now() - 1ms);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::timeout);
}

TEST_F(AadTokenSourceTest, CancellationAbortsTheRequest) {
    FakeResponse held = answer(200, "{}");
    held.hold = true;
    aad_.script(held);
    asio::cancellation_signal cancel;
    auto out =
        start(request(1, "sp-secret"), std::chrono::steady_clock::now() + 10s, cancel.slot());
    ASSERT_TRUE(test::run_until(ioc_, [&] { return aad_.server().held() == 1; }));
    cancel.emit(asio::cancellation_type::terminal);
    ASSERT_TRUE(test::run_until(ioc_, [&] { return out->has_value(); }));
    ASSERT_FALSE(out->value().has_value());
    EXPECT_EQ(out->value().error().code, Errc::cancelled);
}

TEST_F(AadTokenSourceTest, ReusesTheConnectionToOneOrigin) {
    ASSERT_TRUE(fetch(request(1, "sp-secret")).has_value());
    ASSERT_TRUE(fetch(request(1, "sp-secret")).has_value());
    EXPECT_EQ(aad_.server().requests(), 2U);
    EXPECT_EQ(aad_.server().connections(), 1U);
}

}  // namespace
}  // namespace nmid::cloud

namespace nmid::cloud {
namespace {

/// AAD over HTTPS: a TLS fake AAD, and a source trusting the test CA (besides the system
/// store) as a private AAD's CA would be configured.
class AadTokenSourceTlsTest : public AadTokenSourceTest {
protected:
    AadTokenSourceTlsTest() { other_source_ = &tls_source_; }

    /// A fake AAD over TLS with `cert`, reached as `host`.
    test::FakeAad& serve(const test::Issued& cert, std::string host = "127.0.0.1") {
        tls_aad_.emplace(
            ioc_, [this] { return clock_.unix_seconds(); }, "/",
            test::FakeTlsOptions{.cert_pem = cert.cert_pem, .key_pem = cert.key_pem},
            std::move(host));
        tls_aad_->add_secret_client(kClient, kClientSecret);
        tls_aad_->add_certificate_client(kClient, rsa_cert().der());
        return *tls_aad_;
    }

    static AadSettings trusting_test_ca(AadSettings s) {
        s.ca_pem = test::test_pki().ca.cert_pem();
        return s;
    }

    std::optional<test::FakeAad> tls_aad_;
    AadTokenSource tls_source_{ioc_.get_executor(), store_, clock_, trusting_test_ca(settings_)};
};

TEST_F(AadTokenSourceTlsTest, SecretIdentityGetsATokenOverHttps) {
    auto& aad = serve(test::test_pki().server);
    EXPECT_EQ(aad.ad_endpoint(), "https://127.0.0.1:" + std::to_string(aad.port()) + "/");
    const auto r = fetch(request(1, "sp-secret", aad.ad_endpoint()));
    ASSERT_TRUE(r.has_value()) << r.error().upstream_body;
    EXPECT_EQ(r->access_token, std::string{"aad."} + kTenant + "." + kClient + ".1");
    ASSERT_EQ(aad.calls().size(), 1U);
    EXPECT_EQ(aad.calls()[0].form.at("client_secret"), kClientSecret);
    EXPECT_EQ(aad.server().received()[0].header("Host"), "127.0.0.1:" + std::to_string(aad.port()));
    // A second token rides the same TLS connection.
    ASSERT_TRUE(fetch(request(1, "sp-secret", aad.ad_endpoint())).has_value());
    EXPECT_EQ(aad.server().connections(), 1U);
    EXPECT_TRUE(aad_.calls().empty());
}

TEST_F(AadTokenSourceTlsTest, CertificateIdentityGetsATokenOverHttpsWithTheHttpsAudience) {
    auto& aad = serve(test::test_pki().server);
    const auto r = fetch(request(2, "sp-cert", aad.ad_endpoint()));
    ASSERT_TRUE(r.has_value()) << r.error().upstream_body;
    ASSERT_EQ(aad.calls().size(), 1U);
    EXPECT_EQ(aad.calls()[0].rejection, "");
    EXPECT_EQ(nlohmann::json::parse(aad.calls()[0].assertion_claims)["aud"],
              "https://127.0.0.1:" + std::to_string(aad.port()) + "/" + kTenant +
                  "/oauth2/token?api-version=1.0");
}

TEST_F(AadTokenSourceTlsTest, DnsNameMatchingTheCertificateIsVerified) {
    // test_pki's server certificate names DNS `localhost` (resolved from /etc/hosts).
    auto& aad = serve(test::test_pki().server, "localhost");
    const auto r = fetch(request(1, "sp-secret", aad.ad_endpoint()));
    ASSERT_TRUE(r.has_value()) << r.error().upstream_body;
    EXPECT_EQ(aad.calls().size(), 1U);
}

TEST_F(AadTokenSourceTlsTest, CertificateFromAnUntrustedCaFailsClosed) {
    const test::TestCa impostor{"impostor CA"};
    auto& aad = serve(impostor.issue_server({"localhost"}, {"127.0.0.1"}));
    const auto r = fetch(request(1, "sp-secret", aad.ad_endpoint()));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::upstream_unavailable);
    EXPECT_EQ(r.error().upstream_status, 0);
    EXPECT_EQ(r.error().upstream_body,
              "TLS with AAD 127.0.0.1:" + std::to_string(aad.port()) +
                  " failed: certificate verify failed: unable to get local issuer certificate");
    // Nothing, the client secret least of all, reached the server.
    EXPECT_EQ(aad.server().requests(), 0U);
    EXPECT_TRUE(aad.calls().empty());
}

TEST_F(AadTokenSourceTlsTest, SystemStoreAloneDoesNotTrustThePrivateCa) {
    auto& aad = serve(test::test_pki().server);
    // source_ has no CA configured: the system trust store only.
    other_source_ = nullptr;
    const auto r = fetch(request(1, "sp-secret", aad.ad_endpoint()));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::upstream_unavailable);
    EXPECT_NE(r.error().upstream_body.find("certificate verify failed"), std::string::npos);
    EXPECT_EQ(aad.server().requests(), 0U);
}

TEST_F(AadTokenSourceTlsTest, HostNotNamedByTheCertificateFails) {
    struct Case {
        std::vector<std::string> dns;
        std::vector<std::string> ips;
        std::string host;  ///< what adEndpoint names
        std::string reason;
    };
    const std::vector<Case> cases{
        {{"login.example.test"}, {}, "127.0.0.1", "IP address mismatch"},
        {{"login.example.test"}, {"127.0.0.1"}, "localhost", "hostname mismatch"},
    };
    for (const auto& c : cases) {
        auto& aad = serve(test::test_pki().ca.issue_server(c.dns, c.ips), c.host);
        const auto r = fetch(request(1, "sp-secret", aad.ad_endpoint()));
        ASSERT_FALSE(r.has_value()) << c.host;
        EXPECT_EQ(r.error().code, Errc::upstream_unavailable);
        EXPECT_NE(r.error().upstream_body.find("certificate verify failed: " + c.reason),
                  std::string::npos)
            << r.error().upstream_body;
        EXPECT_EQ(aad.server().requests(), 0U) << c.host;
    }
}

TEST_F(AadTokenSourceTlsTest, ClosedHttpsPortIsUnreachableNotATlsFailure) {
    auto& aad = serve(test::test_pki().server);
    const std::string endpoint = aad.ad_endpoint();
    aad.server().stop();
    const auto r = fetch(request(1, "sp-secret", endpoint));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::upstream_unavailable);
    EXPECT_NE(r.error().upstream_body.find("unreachable"), std::string::npos)
        << r.error().upstream_body;
}

TEST(AadTokenSourceSettings, CaThatDoesNotLoadIsAStartUpError) {
    asio::io_context ioc;
    test::ManualClock clock;
    FakeSecretStore store;
    EXPECT_THROW((AadTokenSource{ioc.get_executor(), store, clock, AadSettings{.ca_pem = "junk"}}),
                 std::invalid_argument);
    EXPECT_THROW((AadTokenSource{ioc.get_executor(), store, clock,
                                 AadSettings{.ca_file = "/nonexistent/nmid-aad-ca.pem"}}),
                 std::invalid_argument);
    EXPECT_NO_THROW((AadTokenSource{ioc.get_executor(), store, clock,
                                    AadSettings{.ca_pem = test::test_pki().ca.cert_pem()}}));
}

TEST_F(AadTokenSourceTest, EachTenantIsAskedAtItsOwnTokenUrl) {
    // Auxiliary tenants are fetched one TokenRequest per tenant: the tenant picks the URL and,
    // for a certificate, the assertion's audience.
    aad_.add_certificate_client(kClient, rsa_cert().der());
    for (const char* tenant : {"aux-1.onmicrosoft.com", "0000aaaa-0000-4000-8000-000000000002"}) {
        auto r = request(2, "sp-cert");
        r.identity.tenant_id = tenant;
        const auto got = fetch(r);
        ASSERT_TRUE(got.has_value()) << got.error().upstream_body;
        EXPECT_EQ(got->access_token, std::string{"aad."} + tenant + "." + kClient + "." +
                                         std::to_string(aad_.calls().size()));
        const auto& call = aad_.calls().back();
        EXPECT_EQ(call.target, std::string{"/"} + tenant + "/oauth2/token?api-version=1.0");
        EXPECT_EQ(call.rejection, "");
        EXPECT_EQ(nlohmann::json::parse(call.assertion_claims)["aud"],
                  aad_.ad_endpoint() + tenant + "/oauth2/token?api-version=1.0");
    }
}

}  // namespace
}  // namespace nmid::cloud
