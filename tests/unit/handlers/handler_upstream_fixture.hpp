#pragma once

// NmiHandler against a recording fake IMDS on loopback (tests/support FakeHttpServer): what a
// pod's request makes nmid send upstream, byte for byte. Pods: 10.0.0.5 (default/app, bound
// to client-a) and 10.0.0.6 (kube-system/excepted, matched by an AzurePodIdentityException).

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nmid/core/ascii.hpp"
#include "nmid/crd/crd_store.hpp"
#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/logging/logging.hpp"
#include "nmid/metrics/metrics.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/pods/pod_index.hpp"
#include "support/fake_http_server.hpp"
#include "support/fake_pod_source.hpp"
#include "support/fake_token_source.hpp"
#include "support/manual_clock.hpp"

namespace nmid::handlers::test_support {

namespace asio = boost::asio;

inline constexpr std::string_view kBoundPod = "10.0.0.5";
inline constexpr std::string_view kExceptedPod = "10.0.0.6";

/// A HeaderView over fields given in order (names compared case-insensitively, as HTTP does).
class FieldList final : public http::HeaderView {
public:
    explicit FieldList(std::vector<std::pair<std::string, std::string>> fields)
        : fields_(std::move(fields)) {}
    [[nodiscard]] std::string_view get(std::string_view name) const override {
        for (const auto& [n, v] : fields_) {
            if (iequals(n, name)) {
                return v;
            }
        }
        return {};
    }
    [[nodiscard]] bool contains(std::string_view name) const override {
        for (const auto& field : fields_) {
            if (iequals(field.first, name)) {
                return true;
            }
        }
        return false;
    }
    void for_each(void (*fn)(void*, std::string_view, std::string_view), void* ctx) const override {
        for (const auto& [n, v] : fields_) {
            fn(ctx, n, v);
        }
    }

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

/// The last complete line logged to `log` (the audit line of the last request).
inline std::string last_line_of(std::ostringstream& log) {
    logging::flush();
    const std::string text = log.str();
    const auto end = text.rfind('\n');
    const auto start = text.rfind('\n', end - 1);
    return text.substr(start == std::string::npos ? 0 : start + 1, end - start - 1);
}

struct Reply {
    int status = 0;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    [[nodiscard]] std::string header(std::string_view name) const {
        for (const auto& [n, v] : headers) {
            if (iequals(n, name)) {
                return v;
            }
        }
        return {};
    }
};

class HandlerUpstreamTest : public ::testing::Test {
protected:
    HandlerUpstreamTest() {
        logging::setup_for_test({.format = LogFormat::text, .level = "info"}, log_);
        PodInfo bound = test::make_pod("default", "app", std::string{kBoundPod});
        bound.labels["aadpodidbinding"] = "sel";
        PodInfo excepted = test::make_pod("kube-system", "excepted", std::string{kExceptedPod});
        excepted.labels["app"] = "system";
        pod_source_.set(PodList{{bound, excepted}});
        run_task(pods_.refresh());

        auto snap = std::make_shared<CrdSnapshot>();
        AzureIdentity id;
        id.meta.namespace_name = "default";
        id.meta.name = "id-a";
        id.client_id = "client-a";
        snap->identities.push_back(id);
        AzureIdentityBinding b;
        b.meta.namespace_name = "default";
        b.meta.name = "b-a";
        b.azure_identity = "id-a";
        b.selector = "sel";
        snap->bindings.push_back(b);
        AzurePodIdentityException e;
        e.meta.namespace_name = "kube-system";
        e.meta.name = "system";
        e.pod_labels = {{"app", "system"}};
        snap->exceptions.push_back(e);
        crds_.publish(snap);
    }

    NmiHandler make_handler(HandlerSettings settings = {},
                            WorkloadDependencies* workload = nullptr) {
        return NmiHandler{NmiDependencies{.pods = pods_,
                                          .crds = crds_,
                                          .cache = cache_,
                                          .imds = imds_,
                                          .metrics = metrics_,
                                          .clock = clock_,
                                          .ready = [] { return true; },
                                          .workload = workload},
                          settings, IdentitySettings{.mode = OperationMode::managed},
                          UpstreamSettings{}};
    }

    template <class T>
    T run_task(asio::awaitable<T> task) {
        std::optional<T> out;
        asio::co_spawn(ioc_, std::move(task), [&](const std::exception_ptr& e, T value) {
            if (e) {
                std::rethrow_exception(e);
            }
            out = std::move(value);
        });
        ioc_.restart();
        EXPECT_TRUE(test::run_until(ioc_, [&] { return out.has_value(); })) << "no answer";
        return out.value_or(T{});
    }

    /// As the listener asks: handle_now(), then handle() when that gives up.
    Reply send(NmiHandler& handler, std::string_view method, const std::string& target,
               const FieldList& headers, std::string_view peer = kBoundPod,
               std::string_view body = {}) {
        http::HttpRequest request;
        request.method = method;
        request.target = target;
        request.peer = asio::ip::make_address(peer);
        request.received_at = std::chrono::steady_clock::now();
        request.headers = &headers;
        request.body = body;
        std::optional<http::HttpResponse> response = handler.handle_now(request);
        if (!response) {
            response = run_task(handler.handle(request));
        }
        return Reply{response->status, response->body, response->headers};
    }

    Reply send(NmiHandler& handler, std::string_view method, const std::string& target,
               std::string_view peer = kBoundPod) {
        return send(handler, method, target, FieldList{{{"Metadata", "true"}}}, peer);
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    std::shared_ptr<std::ostringstream> log_ = std::make_shared<std::ostringstream>();
    test::FakePodSource pod_source_;
    PodIndex pods_{ioc_.get_executor(), pod_source_, clock_, PodSettings{}};
    CrdStore crds_;
    test::FakeTokenSource token_source_{clock_};
    TokenCache cache_{ioc_.get_executor(), token_source_, clock_, TokenCacheSettings{}};
    /// IMDS: records every request and answers 200 `{"upstream":true}`.
    test::FakeHttpServer upstream_{ioc_, [](const test::FakeRequest&) {
                                       return test::FakeResponse{
                                           .status = 200,
                                           .headers = {{"Content-Type", "application/json"}},
                                           .body = R"({"upstream":true})"};
                                   }};
    net::HttpClient imds_{ioc_.get_executor(),
                          net::HttpClientSettings{.host = "127.0.0.1", .port = upstream_.port()}};
    metrics::Metrics metrics_;
};

}  // namespace nmid::handlers::test_support
