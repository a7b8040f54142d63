#include "nmid/kube/transport.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/fake_http_server.hpp"
#include "support/manual_clock.hpp"
#include "support/test_ca.hpp"

namespace nmid::kube {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeHttpServer;
using test::FakeRequest;
using test::FakeResponse;
using test::test_pki;

SteadyTime in(std::chrono::milliseconds d) {
    return std::chrono::steady_clock::now() + d;
}

test::FakeTlsOptions server_tls() {
    return test::FakeTlsOptions{.cert_pem = test_pki().server.cert_pem,
                                .key_pem = test_pki().server.key_pem};
}

FakeResponse json(int status, std::string body) {
    FakeResponse r;
    r.status = status;
    r.headers = {{"Content-Type", "application/json"}};
    r.body = std::move(body);
    return r;
}

FakeResponse watch_stream() {
    FakeResponse r = json(200, "");
    r.stream = true;
    return r;
}

/// One watch in flight and the lines it delivered.
struct Watching {
    std::vector<std::string> lines;
    std::optional<Result<WatchResult>> result;
    std::size_t stop_after = 0;  ///< 0: never stop
};

class KubeTransportTest : public ::testing::Test {
protected:
    void serve(FakeHttpServer::Handler handler, const test::FakeTlsOptions& tls = server_tls()) {
        server_ = std::make_unique<FakeHttpServer>(ioc_, std::move(handler), "127.0.0.1", tls);
    }

    KubeConfig config() const {
        return KubeConfig{.server = "https://127.0.0.1:" + std::to_string(server_->port()),
                          .ca_pem = test_pki().ca.cert_pem(),
                          .token = "static-token"};
    }

    ApiServerClient& api(const KubeConfig& cfg, const ApiServerClientSettings& settings = {}) {
        std::string error;
        auto made = make_api_server_client(ioc_.get_executor(), cfg, clock_, settings, error);
        EXPECT_TRUE(made.has_value()) << error;
        api_ = std::move(*made);
        return *api_;
    }

    template <class T>
    bool run(std::optional<T>& out) {
        return test::run_until(ioc_, [&] { return out.has_value(); });
    }

    Result<Response> get(ApiServerClient& c, std::string target, SteadyTime deadline = in(10s)) {
        std::optional<Result<Response>> out;
        asio::co_spawn(ioc_, c.get(std::move(target), deadline),
                       [&](const std::exception_ptr& e, Result<Response> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out = std::move(r);
                       });
        EXPECT_TRUE(run(out));
        return out ? std::move(*out) : Result<Response>{Errc::io_error};
    }

    Result<Response> get_pods(KubeletClient& c) {
        std::optional<Result<Response>> out;
        asio::co_spawn(ioc_, c.get_pods(in(10s)),
                       [&](const std::exception_ptr& e, Result<Response> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out = std::move(r);
                       });
        EXPECT_TRUE(run(out));
        return out ? std::move(*out) : Result<Response>{Errc::io_error};
    }

    std::shared_ptr<Watching> watch(ApiServerClient& c, SteadyTime deadline = in(10s),
                                    std::size_t stop_after = 0) {
        auto w = std::make_shared<Watching>();
        w->stop_after = stop_after;
        LineHandler on_line = [w](std::string_view line) {
            w->lines.emplace_back(line);
            return w->stop_after == 0 || w->lines.size() < w->stop_after;
        };
        asio::co_spawn(ioc_, c.watch("/apis/x/v1/things?watch=1", deadline, std::move(on_line)),
                       [w](const std::exception_ptr& e, Result<WatchResult> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           w->result = std::move(r);
                       });
        return w;
    }

    bool wait_for(const std::function<bool()>& done) { return test::run_until(ioc_, done); }

    asio::io_context ioc_;
    test::ManualClock clock_;
    std::unique_ptr<FakeHttpServer> server_;
    std::unique_ptr<ApiServerClient> api_;
};

TEST_F(KubeTransportTest, GetSendsBearerAcceptAndUserAgentOverVerifiedTls) {
    serve([](const FakeRequest&) {
        FakeResponse r = json(200, R"({"kind":"List"})");
        r.headers.emplace_back("Retry-After", "3");
        return r;
    });
    auto& c = api(config(), ApiServerClientSettings{.user_agent = "nmid/test"});
    const auto res = get(c, "/api/v1/pods?limit=1");
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, R"({"kind":"List"})");
    EXPECT_EQ(res->retry_after, "3");
    ASSERT_EQ(server_->received().size(), 1U);
    const auto& req = server_->received()[0];
    EXPECT_EQ(req.target, "/api/v1/pods?limit=1");
    EXPECT_EQ(req.header("Authorization"), "Bearer static-token");
    EXPECT_EQ(req.header("Accept"), "application/json");
    EXPECT_EQ(req.header("User-Agent"), "nmid/test");
}

TEST_F(KubeTransportTest, ErrorStatusesAreValues) {
    serve([](const FakeRequest&) {
        return json(403, R"({"kind":"Status","reason":"Forbidden","code":403})");
    });
    auto& c = api(config());
    const auto res = get(c, "/api/v1/secrets");
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->status, 403);
    EXPECT_NE(res->body.find("Forbidden"), std::string::npos);
}

TEST_F(KubeTransportTest, ServerPathPrefixIsKept) {
    serve([](const FakeRequest&) { return json(200, "{}"); });
    auto cfg = config();
    cfg.server += "/k8s/clusters/c-1/";
    auto& c = api(cfg);
    ASSERT_TRUE(get(c, "/api/v1/pods").has_value());
    EXPECT_EQ(server_->received()[0].target, "/k8s/clusters/c-1/api/v1/pods");
}

TEST_F(KubeTransportTest, UnknownCaFailsAndInsecureSucceeds) {
    serve([](const FakeRequest&) { return json(200, "{}"); });
    const test::TestCa other{"other"};
    auto cfg = config();
    cfg.ca_pem = other.cert_pem();
    auto& strict = api(cfg);
    const auto refused = get(strict, "/version");
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error(), Errc::io_error);
    EXPECT_EQ(server_->requests(), 0U);

    cfg.insecure_skip_tls_verify = true;
    auto& lax = api(cfg);
    const auto res = get(lax, "/version");
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 200);
}

TEST_F(KubeTransportTest, TlsServerNameIsVerified) {
    serve([](const FakeRequest&) { return json(200, "{}"); });
    auto cfg = config();
    cfg.tls_server_name = "kubernetes.default.svc";
    auto& wrong = api(cfg);
    EXPECT_EQ(get(wrong, "/version").error(), Errc::io_error);
    cfg.tls_server_name = "localhost";
    auto& right = api(cfg);
    EXPECT_TRUE(get(right, "/version").has_value());
}

TEST_F(KubeTransportTest, ClientCertificateFromKubeconfigAuthenticates) {
    auto tls = server_tls();
    tls.client_ca_pem = test_pki().ca.cert_pem();
    tls.require_client_cert = true;
    serve([](const FakeRequest&) { return json(200, "{}"); }, tls);
    test::PemDir dir;
    dir.write_pki(test_pki());
    const std::string text =
        "current-context: x\nclusters:\n- name: c\n  cluster:\n    server: "
        "https://127.0.0.1:" +
        std::to_string(server_->port()) +
        "\n    certificate-authority: ca.crt\nusers:\n- name: u\n  user:\n"
        "    client-certificate: client.crt\n    client-key: client.key\n"
        "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n";
    std::string error;
    const auto cfg = load_kubeconfig(dir.write("config", text).string(), error);
    ASSERT_TRUE(cfg.has_value()) << error;
    auto& c = api(*cfg);
    const auto res = get(c, "/api");
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(server_->received()[0].client_subject, "nmid-test-client");
    EXPECT_EQ(server_->received()[0].header("Authorization"), "");
}

TEST_F(KubeTransportTest, RotatedTokenFileIsSentAfterTheInterval) {
    serve([](const FakeRequest&) { return json(200, "{}"); });
    test::PemDir dir;
    auto cfg = config();
    cfg.token.clear();
    cfg.token_file = dir.write("token", "token-1\n").string();
    auto& c = api(cfg, ApiServerClientSettings{.token_reread_interval = 60s});
    ASSERT_TRUE(get(c, "/a").has_value());
    dir.write("token", "token-2\n");
    clock_.advance(30s);
    ASSERT_TRUE(get(c, "/b").has_value());
    clock_.advance(30s);
    ASSERT_TRUE(get(c, "/c").has_value());
    ASSERT_EQ(server_->received().size(), 3U);
    EXPECT_EQ(server_->received()[0].header("Authorization"), "Bearer token-1");
    EXPECT_EQ(server_->received()[1].header("Authorization"), "Bearer token-1");
    EXPECT_EQ(server_->received()[2].header("Authorization"), "Bearer token-2");
}

TEST_F(KubeTransportTest, UnauthorizedMakesTheNextRequestRereadTheToken) {
    serve([](const FakeRequest& r) {
        return r.header("Authorization") == "Bearer fresh"
                   ? json(200, "{}")
                   : json(401, R"({"kind":"Status","reason":"Unauthorized","code":401})");
    });
    test::PemDir dir;
    auto cfg = config();
    cfg.token_file = dir.write("token", "expired").string();
    auto& c = api(cfg);
    EXPECT_EQ(get(c, "/a")->status, 401);
    dir.write("token", "fresh");
    EXPECT_EQ(get(c, "/a")->status, 200);  // no clock advance needed
}

TEST_F(KubeTransportTest, WatchDeliversLinesSplitAcrossChunks) {
    serve([](const FakeRequest&) { return watch_stream(); });
    auto& c = api(config());
    auto w = watch(c);
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, R"({"type":"ADDED","object":{"metadata":{"resourceVersion":"1"}}})"
                     "\n"
                     R"({"type":"MODI)");
    ASSERT_TRUE(wait_for([&] { return w->lines.size() == 1; }));
    EXPECT_FALSE(w->result.has_value());
    server_->push(0, R"(FIED","object":{}})");
    server_->push(0, "\n");
    server_->push(0, R"({"type":"BOOKMARK"})"
                     "\n"
                     R"({"type":"DELETED"})"
                     "\n");
    ASSERT_TRUE(wait_for([&] { return w->lines.size() == 4; }));
    server_->finish(0);
    ASSERT_TRUE(wait_for([&] { return w->result.has_value(); }));
    ASSERT_TRUE(w->result->has_value()) << w->result->error().message();
    EXPECT_EQ((*w->result)->status, 200);
    EXPECT_EQ((*w->result)->end, StreamEnd::closed);
    const std::vector<std::string> want = {
        R"({"type":"ADDED","object":{"metadata":{"resourceVersion":"1"}}})",
        R"({"type":"MODIFIED","object":{}})", R"({"type":"BOOKMARK"})", R"({"type":"DELETED"})"};
    EXPECT_EQ(w->lines, want);
    EXPECT_EQ(server_->received()[0].header("Authorization"), "Bearer static-token");
}

TEST_F(KubeTransportTest, WatchCutMidLineIsIoErrorAndThePartialLineIsDropped) {
    serve([](const FakeRequest&) { return watch_stream(); });
    auto& c = api(config());
    auto w = watch(c);
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "{\"type\":\"ADDED\"}\n{\"type\":\"MOD");
    ASSERT_TRUE(wait_for([&] { return w->lines.size() == 1; }));
    server_->abort(0);
    ASSERT_TRUE(wait_for([&] { return w->result.has_value(); }));
    ASSERT_FALSE(w->result->has_value());
    EXPECT_EQ(w->result->error(), Errc::io_error);
    EXPECT_EQ(w->lines, std::vector<std::string>{"{\"type\":\"ADDED\"}"});
}

TEST_F(KubeTransportTest, WatchDeadlineEndsTheStreamAsDeadline) {
    serve([](const FakeRequest&) { return watch_stream(); });
    auto& c = api(config());
    auto w = watch(c, in(150ms));
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "{\"n\":1}\n");
    ASSERT_TRUE(wait_for([&] { return w->result.has_value(); }));
    ASSERT_TRUE(w->result->has_value()) << w->result->error().message();
    EXPECT_EQ((*w->result)->status, 200);
    EXPECT_EQ((*w->result)->end, StreamEnd::deadline);
    EXPECT_EQ(w->lines, std::vector<std::string>{"{\"n\":1}"});
}

TEST_F(KubeTransportTest, WatchOpenedWithGoneReturnsTheStatusBody) {
    const std::string gone =
        R"({"kind":"Status","status":"Failure","reason":"Expired","code":410})";
    serve([&](const FakeRequest&) { return json(410, gone); });
    auto& c = api(config());
    auto w = watch(c);
    ASSERT_TRUE(wait_for([&] { return w->result.has_value(); }));
    ASSERT_TRUE(w->result->has_value()) << w->result->error().message();
    EXPECT_EQ((*w->result)->status, 410);
    EXPECT_EQ((*w->result)->body, gone);
    EXPECT_TRUE(w->lines.empty());
}

TEST_F(KubeTransportTest, WatchLineOverTheLimitIsParseError) {
    serve([](const FakeRequest&) { return watch_stream(); });
    auto& c = api(config(), ApiServerClientSettings{.max_line = 16});
    auto w = watch(c);
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "short\n");
    server_->push(0, std::string(10, 'x'));
    server_->push(0, std::string(10, 'y'));
    ASSERT_TRUE(wait_for([&] { return w->result.has_value(); }));
    ASSERT_FALSE(w->result->has_value());
    EXPECT_EQ(w->result->error(), Errc::parse_error);
    EXPECT_EQ(w->lines, std::vector<std::string>{"short"});
}

TEST_F(KubeTransportTest, WatchStoppedByTheHandlerIsClosed) {
    serve([](const FakeRequest&) { return watch_stream(); });
    auto& c = api(config());
    auto w = watch(c, in(10s), /*stop_after=*/2);
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "a\nb\nc\n");
    ASSERT_TRUE(wait_for([&] { return w->result.has_value(); }));
    ASSERT_TRUE(w->result->has_value());
    EXPECT_EQ((*w->result)->end, StreamEnd::closed);
    EXPECT_EQ(w->lines, (std::vector<std::string>{"a", "b"}));
}

TEST_F(KubeTransportTest, WatchLastLineWithoutNewlineIsDeliveredAtCleanEnd) {
    serve([](const FakeRequest&) {
        FakeResponse r = json(200, "");
        r.chunks = {"{\"a\":1}\n{\"b\"", ":2}"};
        return r;
    });
    auto& c = api(config());
    auto w = watch(c);
    ASSERT_TRUE(wait_for([&] { return w->result.has_value(); }));
    ASSERT_TRUE(w->result->has_value());
    EXPECT_EQ(w->lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
}

TEST_F(KubeTransportTest, FactoryErrorsAreInvalidConfigWithAReason) {
    serve([](const FakeRequest&) { return json(200, "{}"); });
    struct Case {
        const char* name;
        KubeConfig cfg;
        const char* part;
    };
    const std::string server = config().server;
    const Case cases[] = {
        {"bad URL", KubeConfig{.server = "127.0.0.1:6443"}, "127.0.0.1:6443"},
        {"unreadable token file", KubeConfig{.server = server, .token_file = "/nonexistent/token"},
         "/nonexistent/token"},
        {"unreadable CA file", KubeConfig{.server = server, .ca_file = "/nonexistent/ca.crt"},
         "/nonexistent/ca.crt"},
        {"client key mismatch",
         KubeConfig{.server = server,
                    .ca_pem = test_pki().ca.cert_pem(),
                    .client_cert_pem = test_pki().client.cert_pem,
                    .client_key_pem = test_pki().server.key_pem},
         "client key"},
    };
    for (const auto& tc : cases) {
        std::string error;
        const auto made = make_api_server_client(ioc_.get_executor(), tc.cfg, clock_, {}, error);
        ASSERT_FALSE(made.has_value()) << tc.name;
        EXPECT_EQ(made.error(), Errc::invalid_config) << tc.name;
        EXPECT_NE(error.find(tc.part), std::string::npos) << tc.name << ": " << error;
    }
}

TEST_F(KubeTransportTest, KubeletOverHttpsWithBearerTokenAndCaFile) {
    serve([](const FakeRequest& r) {
        return r.target == "/pods"
                   ? json(200, R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":null})")
                   : json(404, "");
    });
    test::PemDir dir;
    const auto ca = dir.write("kubelet-ca.crt", test_pki().ca.cert_pem());
    std::string error;
    auto kubelet = make_kubelet_client(
        ioc_.get_executor(),
        KubeletClientSettings{.url = "https://127.0.0.1:" + std::to_string(server_->port()),
                              .ca_file = ca.string()},
        std::make_shared<StaticTokenProvider>("sa-token"), error);
    ASSERT_TRUE(kubelet.has_value()) << error;
    const auto res = get_pods(**kubelet);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 200);
    EXPECT_NE(res->body.find("PodList"), std::string::npos);
    EXPECT_EQ(server_->received()[0].header("Authorization"), "Bearer sa-token");
    EXPECT_EQ(server_->received()[0].header("Accept"), "application/json");
}

TEST_F(KubeTransportTest, KubeletSelfSignedNeedsInsecureTls) {
    const test::TestCa node_ca{"node-1 self-signed"};
    const auto cert = node_ca.issue_server({"node-1"}, {});
    serve([](const FakeRequest&) { return json(200, "{}"); },
          test::FakeTlsOptions{.cert_pem = cert.cert_pem, .key_pem = cert.key_pem});
    const std::string url = "https://127.0.0.1:" + std::to_string(server_->port());
    std::string error;
    auto strict = make_kubelet_client(
        ioc_.get_executor(), KubeletClientSettings{.url = url, .ca_pem = test_pki().ca.cert_pem()},
        nullptr, error);
    ASSERT_TRUE(strict.has_value()) << error;
    EXPECT_EQ(get_pods(**strict).error(), Errc::io_error);
    auto lax = make_kubelet_client(
        ioc_.get_executor(), KubeletClientSettings{.url = url, .insecure_skip_tls_verify = true},
        nullptr, error);
    ASSERT_TRUE(lax.has_value()) << error;
    const auto res = get_pods(**lax);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(server_->received()[0].header("Authorization"), "");
}

TEST_F(KubeTransportTest, KubeletReadOnlyPortIsPlainHttp) {
    server_ = std::make_unique<FakeHttpServer>(
        ioc_, [](const FakeRequest&) { return json(200, R"({"items":[]})"); });
    std::string error;
    auto kubelet = make_kubelet_client(
        ioc_.get_executor(),
        KubeletClientSettings{.url = "http://127.0.0.1:" + std::to_string(server_->port())},
        nullptr, error);
    ASSERT_TRUE(kubelet.has_value()) << error;
    const auto res = get_pods(**kubelet);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->body, R"({"items":[]})");
    EXPECT_EQ(server_->received()[0].target, "/pods");
}

TEST_F(KubeTransportTest, KubeletBadUrlIsInvalidConfig) {
    std::string error;
    auto kubelet = make_kubelet_client(
        ioc_.get_executor(), KubeletClientSettings{.url = "10.0.0.1:10250"}, nullptr, error);
    ASSERT_FALSE(kubelet.has_value());
    EXPECT_EQ(kubelet.error(), Errc::invalid_config);
    EXPECT_NE(error.find("kubelet URL"), std::string::npos) << error;
}

}  // namespace
}  // namespace nmid::kube
