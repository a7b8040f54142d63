#pragma once

// One cluster served by a real NmiHandler: nmid's pod index, CRD store, token cache and token
// sources, with two recording fake IMDS servers on loopback: one for nmid's own token fetches
// (the real ImdsTokenSource talks to it, so the query nmid sends is what is checked) and one
// behind the proxy / pass-through. Service principals go to a FakeTokenSource (the AAD leg).
// Every answer's access_token names where it came from: "imds-N" (token IMDS fetch N),
// "token-N" (AAD fetch N), "proxy-N" (forwarded request N).

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "model.hpp"
#include "nmid/cloud/composite_token_source.hpp"
#include "nmid/cloud/imds_token_source.hpp"
#include "nmid/crd/crd_store.hpp"
#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/logging/logging.hpp"
#include "nmid/metrics/metrics.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/token/token_cache.hpp"
#include "render.hpp"
#include "support/fake_http_server.hpp"
#include "support/fake_pod_source.hpp"
#include "support/fake_token_source.hpp"
#include "support/manual_clock.hpp"
#include "targets.hpp"

namespace nmid::security_test {

namespace asio = boost::asio;

class Headers final : public http::HeaderView {
public:
    explicit Headers(std::vector<std::pair<std::string, std::string>> fields)
        : fields_(std::move(fields)) {}
    [[nodiscard]] std::string_view get(std::string_view name) const override {
        for (const auto& [n, v] : fields_) {
            if (same_ci(n, name)) {
                return v;
            }
        }
        return {};
    }
    [[nodiscard]] bool contains(std::string_view name) const override {
        for (const auto& [n, v] : fields_) {
            if (same_ci(n, name)) {
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

/// The query parameters of a recorded IMDS token fetch, decoded by the test.
inline std::map<std::string, std::string> query_params_of(std::string_view target) {
    std::map<std::string, std::string> out;
    const std::size_t q = target.find('?');
    if (q == std::string_view::npos) {
        return out;
    }
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const std::string_view pair = rest.substr(0, rest.find('&'));
        rest = pair.size() < rest.size() ? rest.substr(pair.size() + 1) : std::string_view{};
        const std::size_t eq = pair.find('=');
        std::string key = decode_once(pair.substr(0, eq));
        std::string value = eq == std::string_view::npos ? "" : decode_once(pair.substr(eq + 1));
        out.emplace(std::move(key), std::move(value));  // the first occurrence wins
    }
    return out;
}

/// Gives the inner source a deadline on the real steady clock (the HttpClient's), since the
/// cache's deadlines come from the ManualClock.
class RealDeadline final : public TokenSource {
public:
    explicit RealDeadline(TokenSource& inner) : inner_(inner) {}
    asio::awaitable<FetchResult> fetch(const TokenRequest& request, SteadyTime) override {
        co_return co_await inner_.fetch(
            request, std::chrono::steady_clock::now() + std::chrono::seconds{10});
    }

private:
    TokenSource& inner_;
};

struct Answer {
    bool completed = false;
    int status = 0;
    std::string body;
};

inline test::FakeResponse token_answer(const std::string& access_token) {
    test::FakeResponse r;
    r.headers = {{"Content-Type", "application/json"}};
    r.body = R"({"access_token":")" + access_token +
             R"(","expires_in":"3600","resource":"r","token_type":"Bearer"})";
    return r;
}

class HandlerRig {
public:
    explicit HandlerRig(const Cluster& c)
        : token_imds_(ioc_,
                      [this](const test::FakeRequest& r) {
                          fetches.push_back(query_params_of(r.target));
                          return token_answer("imds-" + std::to_string(fetches.size() - 1));
                      }),
          proxy_imds_(ioc_,
                      [this](const test::FakeRequest& r) {
                          forwarded.push_back(r.target);
                          if (!under_identity(canonical_segments(r.target))) {
                              return test::FakeResponse{.body = R"({"compute":{}})"};
                          }
                          return token_answer("proxy-" + std::to_string(forwarded.size() - 1));
                      }),
          handler_(deps(), HandlerSettings{}, identity_settings(c), UpstreamSettings{}) {
        pod_source_.set(to_pod_list(c));
        (void)run(pods_.refresh());
        crds_.publish(std::make_shared<const CrdSnapshot>(to_snapshot(c)));
    }

    Answer send(const GenRequest& g) {
        const Headers headers{g.headers};
        http::HttpRequest request;
        request.method = g.method;
        request.target = g.target;
        request.peer = asio::ip::make_address(g.peer);
        request.received_at = std::chrono::steady_clock::now();
        request.headers = &headers;
        if (std::optional<http::HttpResponse> now = handler_.handle_now(request)) {
            return {true, now->status, now->body};
        }
        std::optional<http::HttpResponse> later = run(handler_.handle(request));
        return later ? Answer{true, later->status, later->body} : Answer{};
    }

    /// AAD fetches so far ("token-N" is requests()[N-1]).
    [[nodiscard]] const std::vector<TokenRequest>& aad_fetches() const { return aad_.requests(); }

    std::vector<std::map<std::string, std::string>> fetches;  ///< token IMDS queries
    std::vector<std::string> forwarded;                       ///< proxy IMDS targets

private:
    template <class T>
    std::optional<T> run(asio::awaitable<T> task) {
        std::optional<T> out;
        asio::co_spawn(ioc_, std::move(task), [&](const std::exception_ptr& e, T value) {
            if (e) {
                std::rethrow_exception(e);
            }
            out = std::move(value);
        });
        ioc_.restart();
        // Real I/O (the fake IMDS servers) completes by itself; a wait on the ManualClock (a
        // pod lookup's re-read of the pod source) is let through by moving the clock to it.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds{5};
        while (!test::run_until(
                   ioc_, [&] { return out.has_value(); }, std::chrono::milliseconds{20}) &&
               std::chrono::steady_clock::now() < give_up) {
            if (clock_.waiters() > 0) {
                clock_.advance(clock_.next_deadline() - clock_.steady_now());
            }
        }
        return out;
    }

    handlers::NmiDependencies deps() {
        return {.pods = pods_,
                .crds = crds_,
                .cache = cache_,
                .imds = proxy_client_,
                .metrics = metrics_,
                .clock = clock_,
                .ready = [] { return true; }};
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    test::FakeHttpServer token_imds_;
    test::FakeHttpServer proxy_imds_;
    test::FakePodSource pod_source_;
    PodIndex pods_{ioc_.get_executor(), pod_source_, clock_, PodSettings{}};
    CrdStore crds_;
    net::HttpClient token_client_{
        ioc_.get_executor(),
        net::HttpClientSettings{.host = "127.0.0.1", .port = token_imds_.port()}};
    cloud::ImdsTokenSource imds_source_{token_client_, clock_, "nmid-property-test"};
    RealDeadline imds_{imds_source_};
    test::FakeTokenSource aad_{clock_};
    cloud::CompositeTokenSource source_{imds_, aad_};
    TokenCache cache_{ioc_.get_executor(), source_, clock_,
                      TokenCacheSettings{.rate_per_second = 0, .max_attempts = 1}};
    net::HttpClient proxy_client_{
        ioc_.get_executor(),
        net::HttpClientSettings{.host = "127.0.0.1", .port = proxy_imds_.port()}};
    metrics::Metrics metrics_;
    handlers::NmiHandler handler_;
};

}  // namespace nmid::security_test
