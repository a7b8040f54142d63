#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>

#include "nmid/net/http_client.hpp"
#include "support/fake_http_server.hpp"
#include "support/test_ca.hpp"

namespace nmid::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeHttpServer;
using test::FakeRequest;
using test::FakeResponse;
using test::FakeTlsOptions;
using test::test_pki;

SteadyTime in(std::chrono::milliseconds d) {
    return std::chrono::steady_clock::now() + d;
}

FakeResponse ok(std::string body = "secure") {
    FakeResponse r;
    r.body = std::move(body);
    return r;
}

FakeTlsOptions server_tls(const test::Issued& cert = test_pki().server) {
    return FakeTlsOptions{.cert_pem = cert.cert_pem, .key_pem = cert.key_pem};
}

class HttpClientTlsTest : public ::testing::Test {
protected:
    void serve(const FakeTlsOptions& tls, const std::string& address = "127.0.0.1") {
        server_ = std::make_unique<FakeHttpServer>(
            ioc_, [](const FakeRequest& r) { return ok("secure " + r.target); }, address, tls);
    }

    HttpClientSettings settings(TlsSettings tls) const {
        HttpClientSettings s;
        s.host = server_->address();
        s.port = server_->port();
        s.connect_timeout = 5s;
        s.tls = std::move(tls);
        s.tls.enabled = true;
        return s;
    }

    TlsSettings trusting() const { return TlsSettings{.ca_pem = test_pki().ca.cert_pem()}; }

    HttpClient& client(HttpClientSettings s) {
        client_ = std::make_unique<HttpClient>(ioc_.get_executor(), std::move(s));
        return *client_;
    }

    Result<ClientResponse> get(HttpClient& c, const std::string& target = "/",
                               SteadyTime deadline = in(10s)) {
        auto out = std::make_shared<std::optional<Result<ClientResponse>>>();
        asio::co_spawn(
            ioc_,
            [&c, target, deadline]() -> asio::awaitable<Result<ClientResponse>> {
                ClientRequest req;
                req.target = target;
                co_return co_await c.request(req, deadline);
            },
            [out](const std::exception_ptr& e, Result<ClientResponse> r) {
                if (e) {
                    std::rethrow_exception(e);
                }
                *out = std::move(r);
            });
        EXPECT_TRUE(test::run_until(ioc_, [&] { return out->has_value(); }));
        return out->has_value() ? std::move(**out) : Result<ClientResponse>{Errc::io_error};
    }

    asio::io_context ioc_;
    std::unique_ptr<FakeHttpServer> server_;
    std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpClientTlsTest, TrustedCaVerifiesIpSanAndReusesTheConnection) {
    serve(server_tls());
    auto& c = client(settings(trusting()));
    for (int i = 0; i < 3; ++i) {
        const auto res = get(c, "/x");
        ASSERT_TRUE(res.has_value()) << res.error().message();
        EXPECT_EQ(res->status, 200);
        EXPECT_EQ(res->body, "secure /x");
    }
    EXPECT_EQ(server_->connections(), 1U);
    const auto stats = c.stats();
    EXPECT_EQ(stats.connects, 1U);
    EXPECT_EQ(stats.reused, 2U);
    EXPECT_EQ(stats.tls_failures, 0U);
    EXPECT_EQ(stats.idle, 1U);
    // 443 is the TLS default port; this one is not, so the Host header names it.
    EXPECT_EQ(server_->received()[0].header("Host"),
              "127.0.0.1:" + std::to_string(server_->port()));
}

TEST_F(HttpClientTlsTest, Ipv6LiteralIsVerifiedAgainstIpSan) {
    std::unique_ptr<FakeHttpServer> probe;
    try {
        serve(server_tls(), "::1");
    } catch (const std::exception&) {
        GTEST_SKIP() << "no IPv6 loopback here";
    }
    auto& c = client(settings(trusting()));
    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 200);
}

TEST_F(HttpClientTlsTest, CaFromFileWorksLikeCaData) {
    serve(server_tls());
    test::PemDir dir;
    const auto ca = dir.write("ca.crt", test_pki().ca.cert_pem());
    auto& c = client(settings(TlsSettings{.ca_file = ca.string()}));
    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 200);
}

TEST_F(HttpClientTlsTest, UnknownCaFailsWithIoError) {
    serve(server_tls());
    const test::TestCa other{"someone else"};
    auto& c = client(settings(TlsSettings{.ca_pem = other.cert_pem()}));
    const auto res = get(c);
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error(), Errc::io_error);
    EXPECT_EQ(c.stats().tls_failures, 1U);
    EXPECT_EQ(c.stats().connects, 0U);
    EXPECT_EQ(server_->requests(), 0U);
    EXPECT_TRUE(test::run_until(ioc_, [&] { return server_->tls_handshake_failures() == 1; }));
    EXPECT_EQ(c.last_tls_error(),
              "certificate verify failed: unable to get local issuer certificate");
}

TEST_F(HttpClientTlsTest, LastTlsErrorIsEmptyUntilAHandshakeFails) {
    serve(server_tls());
    auto& c = client(settings(trusting()));
    ASSERT_TRUE(get(c).has_value());
    EXPECT_EQ(c.last_tls_error(), "");
}

TEST_F(HttpClientTlsTest, SystemCasAddedToAGivenCaStillTrustIt) {
    serve(server_tls());
    auto tls = trusting();
    tls.add_system_ca = true;
    auto& c = client(settings(tls));
    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 200);
}

TEST_F(HttpClientTlsTest, SystemCasAddedToAnotherCaDoNotTrustTheTestCa) {
    serve(server_tls());
    const test::TestCa other{"someone else"};
    auto& c = client(settings(TlsSettings{.ca_pem = other.cert_pem(), .add_system_ca = true}));
    const auto res = get(c);
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error(), Errc::io_error);
    EXPECT_EQ(c.stats().tls_failures, 1U);
}

TEST_F(HttpClientTlsTest, NoCaGivenUsesSystemCasWhichDoNotKnowTheTestCa) {
    serve(server_tls());
    auto& c = client(settings(TlsSettings{}));
    const auto res = get(c);
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error(), Errc::io_error);
}

TEST_F(HttpClientTlsTest, HostnameMismatchFails) {
    serve(server_tls());
    auto tls = trusting();
    tls.server_name = "api.example.com";
    auto& c = client(settings(tls));
    const auto res = get(c);
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error(), Errc::io_error);
    EXPECT_EQ(server_->requests(), 0U);
    EXPECT_EQ(c.last_tls_error(), "certificate verify failed: hostname mismatch");
}

TEST_F(HttpClientTlsTest, ServerNameMatchingDnsSanSucceedsAndIsSentAsSni) {
    serve(server_tls());
    auto tls = trusting();
    tls.server_name = "localhost";
    auto& c = client(settings(tls));
    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 200);
}

TEST_F(HttpClientTlsTest, IpAddressNotInSansFailsEvenWithMatchingDnsName) {
    // A certificate for `localhost` only: reaching it as 127.0.0.1 must not pass.
    serve(server_tls(test_pki().ca.issue_server({"localhost"}, {})));
    auto& c = client(settings(trusting()));
    const auto res = get(c);
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error(), Errc::io_error);
}

TEST_F(HttpClientTlsTest, InsecureSkipVerifyAcceptsAnUnknownCa) {
    const test::TestCa other{"self-signed kubelet"};
    serve(server_tls(other.issue_server({"node-1"}, {})));
    auto& c = client(settings(TlsSettings{.insecure_skip_verify = true}));
    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->body, "secure /");
}

TEST_F(HttpClientTlsTest, ClientCertificateIsPresentedAndVerified) {
    auto tls = server_tls();
    tls.client_ca_pem = test_pki().ca.cert_pem();
    tls.require_client_cert = true;
    serve(tls);
    auto client_tls = trusting();
    client_tls.client_cert_pem = test_pki().client.cert_pem;
    client_tls.client_key_pem = test_pki().client.key_pem;
    auto& c = client(settings(client_tls));
    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 200);
    ASSERT_EQ(server_->received().size(), 1U);
    EXPECT_EQ(server_->received()[0].client_subject, "nmid-test-client");
}

TEST_F(HttpClientTlsTest, ClientCertificateFromFiles) {
    auto tls = server_tls();
    tls.client_ca_pem = test_pki().ca.cert_pem();
    tls.require_client_cert = true;
    serve(tls);
    test::PemDir dir;
    dir.write_pki(test_pki());
    auto client_tls = TlsSettings{.ca_file = (dir.path() / "ca.crt").string(),
                                  .client_cert_file = (dir.path() / "client.crt").string(),
                                  .client_key_file = (dir.path() / "client.key").string()};
    auto& c = client(settings(client_tls));
    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(server_->received()[0].client_subject, "nmid-test-client");
}

TEST_F(HttpClientTlsTest, MissingRequiredClientCertificateFails) {
    auto tls = server_tls();
    tls.client_ca_pem = test_pki().ca.cert_pem();
    tls.require_client_cert = true;
    serve(tls);
    auto& c = client(settings(trusting()));
    const auto res = get(c);
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error(), Errc::io_error);
    EXPECT_EQ(server_->requests(), 0U);
}

TEST_F(HttpClientTlsTest, HandshakeThatNeverAnswersEndsAtTheDeadline) {
    // A TCP listener that accepts and never speaks TLS.
    asio::ip::tcp::acceptor silent{ioc_, {asio::ip::make_address("127.0.0.1"), 0}};
    asio::ip::tcp::socket accepted{ioc_};
    silent.async_accept(accepted, [](const boost::system::error_code&) {});
    HttpClientSettings s;
    s.host = "127.0.0.1";
    s.port = silent.local_endpoint().port();
    s.tls = trusting();
    s.tls.enabled = true;
    auto& c = client(s);
    const auto res = get(c, "/", in(100ms));
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error(), Errc::timeout);
}

TEST_F(HttpClientTlsTest, HandshakeBoundedByConnectTimeoutIsIoError) {
    asio::ip::tcp::acceptor silent{ioc_, {asio::ip::make_address("127.0.0.1"), 0}};
    asio::ip::tcp::socket accepted{ioc_};
    silent.async_accept(accepted, [](const boost::system::error_code&) {});
    HttpClientSettings s;
    s.host = "127.0.0.1";
    s.port = silent.local_endpoint().port();
    s.connect_timeout = 50ms;
    s.tls = trusting();
    s.tls.enabled = true;
    auto& c = client(s);
    const auto res = get(c, "/", in(10s));
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error(), Errc::io_error);
}

struct BadMaterialCase {
    const char* name;
    TlsSettings tls;
    const char* message_part;
};

TEST(HttpClientTlsCreate, BadMaterialIsInvalidConfigWithAReason) {
    const auto& pki = test_pki();
    const test::TestCa other{"other"};
    const auto other_client = other.issue_client("x");
    const BadMaterialCase cases[] = {
        {"garbage CA", TlsSettings{.ca_pem = "not a pem"}, "CA certificates"},
        {"missing CA file", TlsSettings{.ca_file = "/nonexistent/ca.crt"}, "/nonexistent/ca.crt"},
        {"cert without key",
         TlsSettings{.ca_pem = pki.ca.cert_pem(), .client_cert_pem = pki.client.cert_pem},
         "without its key"},
        {"key without cert",
         TlsSettings{.ca_pem = pki.ca.cert_pem(), .client_key_pem = pki.client.key_pem},
         "without its certificate"},
        {"mismatched key",
         TlsSettings{.ca_pem = pki.ca.cert_pem(),
                     .client_cert_pem = pki.client.cert_pem,
                     .client_key_pem = other_client.key_pem},
         "client key"},
        {"garbage key",
         TlsSettings{
             .ca_pem = pki.ca.cert_pem(),
             .client_cert_pem = pki.client.cert_pem,
             .client_key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
         "client key"},
        {"missing key file",
         TlsSettings{.ca_pem = pki.ca.cert_pem(),
                     .client_cert_pem = pki.client.cert_pem,
                     .client_key_file = "/nonexistent/client.key"},
         "/nonexistent/client.key"},
    };
    asio::io_context ioc;
    for (const auto& tc : cases) {
        HttpClientSettings s;
        s.host = "127.0.0.1";
        s.port = 443;
        s.tls = tc.tls;
        s.tls.enabled = true;
        std::string error;
        const auto made = HttpClient::create(ioc.get_executor(), s, &error);
        ASSERT_FALSE(made.has_value()) << tc.name;
        EXPECT_EQ(made.error(), Errc::invalid_config) << tc.name;
        EXPECT_NE(error.find(tc.message_part), std::string::npos) << tc.name << ": " << error;
    }
}

TEST(HttpClientTlsCreate, GoodMaterialAndPlainSettingsCreateAClient) {
    asio::io_context ioc;
    HttpClientSettings s;
    s.host = "127.0.0.1";
    std::string error;
    EXPECT_TRUE(HttpClient::create(ioc.get_executor(), s, &error).has_value());
    s.tls = TlsSettings{.enabled = true,
                        .ca_pem = test_pki().ca.cert_pem(),
                        .client_cert_pem = test_pki().client.cert_pem,
                        .client_key_pem = test_pki().client.key_pem};
    EXPECT_TRUE(HttpClient::create(ioc.get_executor(), s, &error).has_value()) << error;
}

}  // namespace
}  // namespace nmid::net
