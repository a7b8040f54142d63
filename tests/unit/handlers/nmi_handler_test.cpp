// NmiHandler's token path with its per-thread memo of (pod, query) decisions: what a request
// resolves to must follow every CRD snapshot and pod index change, and the memo of one handler
// must never answer for another.
#include "nmid/handlers/nmi_handler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "handler_upstream_fixture.hpp"
#include "nmid/crd/crd_store.hpp"
#include "nmid/logging/logging.hpp"
#include "nmid/metrics/metrics.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/pods/pod_index.hpp"
#include "support/fake_pod_source.hpp"
#include "support/fake_token_source.hpp"
#include "support/manual_clock.hpp"

namespace nmid::handlers {
namespace {

namespace asio = boost::asio;
using test::FakePodSource;
using test::FakeTokenSource;
using test::ManualClock;

constexpr std::string_view kPodIp = "10.0.0.5";
constexpr std::string_view kVault = "https://vault.azure.net";

class Headers final : public http::HeaderView {
public:
    explicit Headers(std::vector<std::pair<std::string, std::string>> fields)
        : fields_(std::move(fields)) {}
    [[nodiscard]] std::string_view get(std::string_view name) const override {
        for (const auto& [n, v] : fields_) {
            if (n == name) {
                return v;
            }
        }
        return {};
    }
    [[nodiscard]] bool contains(std::string_view name) const override { return !get(name).empty(); }
    void for_each(void (*fn)(void*, std::string_view, std::string_view), void* ctx) const override {
        for (const auto& [n, v] : fields_) {
            fn(ctx, n, v);
        }
    }

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

AzureIdentity identity(std::string name, std::string client_id) {
    AzureIdentity id;
    id.meta.namespace_name = "default";
    id.meta.name = std::move(name);
    id.client_id = std::move(client_id);
    id.resource_id = "/subscriptions/s/resourcegroups/rg/providers/x/" + id.meta.name;
    return id;
}

AzureIdentityBinding binding(std::string name, std::string identity_name, std::string selector) {
    AzureIdentityBinding b;
    b.meta.namespace_name = "default";
    b.meta.name = std::move(name);
    b.azure_identity = std::move(identity_name);
    b.selector = std::move(selector);
    return b;
}

/// A snapshot binding selector `sel` to the identities given (sorted by name, as stores keep).
CrdSnapshotPtr snapshot(std::vector<AzureIdentity> identities,
                        const std::string& selector = "sel") {
    auto snap = std::make_shared<CrdSnapshot>();
    for (const auto& id : identities) {
        snap->bindings.push_back(binding("b-" + id.meta.name, id.meta.name, selector));
    }
    snap->identities = std::move(identities);
    return snap;
}

PodInfo bound_pod(std::string label) {
    PodInfo pod = test::make_pod("default", "app", std::string{kPodIp});
    pod.labels["aadpodidbinding"] = std::move(label);
    return pod;
}

struct Answer {
    int status = 0;
    std::string body;
};

class NmiHandlerTest : public ::testing::Test {
protected:
    NmiHandlerTest() {
        logging::setup_for_test({.format = LogFormat::text, .level = "info"}, log_);
        pod_source_.set(PodList{{bound_pod("sel")}});
        run(pods_.refresh());
        crds_.publish(snapshot({identity("id-a", "client-a")}));
    }

    NmiHandler make_handler(CrdStore& crds) {
        return NmiHandler{NmiDependencies{.pods = pods_,
                                          .crds = crds,
                                          .cache = cache_,
                                          .imds = imds_,
                                          .metrics = metrics_,
                                          .clock = clock_,
                                          .ready = [] { return true; }},
                          HandlerSettings{}, IdentitySettings{.mode = OperationMode::managed},
                          UpstreamSettings{}};
    }

    template <class T>
    T run(asio::awaitable<T> task) {
        std::optional<T> out;
        asio::co_spawn(ioc_, std::move(task), [&](const std::exception_ptr& e, T value) {
            if (e) {
                std::rethrow_exception(e);
            }
            out = std::move(value);
        });
        ioc_.restart();
        ioc_.poll();
        EXPECT_TRUE(out.has_value()) << "did not complete without time moving";
        return out.value_or(T{});
    }

    static http::HttpRequest request_for(const std::string& target, const Headers& headers,
                                         std::string_view peer) {
        http::HttpRequest request;
        request.method = "GET";
        request.target = target;
        request.peer = asio::ip::make_address(peer);
        request.received_at = std::chrono::steady_clock::now();
        request.headers = &headers;
        return request;
    }

    /// As the listener asks: handle_now(), then handle() when that gives up.
    Answer get(NmiHandler& handler, const std::string& target,
               const Headers& headers = Headers{{{"Metadata", "true"}}},
               std::string_view peer = kPodIp) {
        const http::HttpRequest request = request_for(target, headers, peer);
        std::optional<http::HttpResponse> response = handler.handle_now(request);
        if (!response) {
            response = run(handler.handle(request));
        }
        return Answer{response->status, response->body};
    }

    /// handle_now() alone; std::nullopt when it gave up.
    static std::optional<Answer> get_now(NmiHandler& handler, const std::string& target,
                                         const Headers& headers, std::string_view peer = kPodIp) {
        const std::optional<http::HttpResponse> response =
            handler.handle_now(request_for(target, headers, peer));
        if (!response) {
            return std::nullopt;
        }
        return Answer{response->status, response->body};
    }

    std::size_t log_lines() {
        logging::flush();
        const std::string text = log_->str();
        return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    }

    Answer get_token(NmiHandler& handler,
                     const std::string& query = "resource=https://vault.azure.net") {
        return get(handler, "/metadata/identity/oauth2/token?api-version=2018-02-01&" + query);
    }

    /// A new read of the pod source (past the index's minimum interval between reads).
    void reread_pods() {
        clock_.advance(std::chrono::seconds{1});
        ioc_.restart();
        ioc_.poll();
        ASSERT_TRUE(run(pods_.refresh()));
    }

    std::string last_log_line() { return test_support::last_line_of(*log_); }

    asio::io_context ioc_;
    ManualClock clock_;
    std::shared_ptr<std::ostringstream> log_ = std::make_shared<std::ostringstream>();
    FakePodSource pod_source_;
    PodIndex pods_{ioc_.get_executor(), pod_source_, clock_, PodSettings{}};
    CrdStore crds_;
    FakeTokenSource token_source_{clock_};
    TokenCache cache_{ioc_.get_executor(), token_source_, clock_, TokenCacheSettings{}};
    net::HttpClient imds_{ioc_.get_executor(), net::HttpClientSettings{.host = "127.0.0.1"}};
    metrics::Metrics metrics_;
};

TEST_F(NmiHandlerTest, RepeatedRequestIsACacheHitForTheBoundIdentity) {
    NmiHandler handler = make_handler(crds_);
    const Answer first = get_token(handler);
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(token_source_.calls(), 1);
    EXPECT_EQ(token_source_.last_request().identity.client_id, "client-a");
    EXPECT_EQ(token_source_.last_request().resource, kVault);
    EXPECT_NE(last_log_line().find(" cache=miss"), std::string::npos) << last_log_line();

    const Answer second = get_token(handler);
    EXPECT_EQ(second.status, 200);
    EXPECT_EQ(second.body, first.body);
    EXPECT_EQ(token_source_.calls(), 1);
    EXPECT_NE(last_log_line().find(" pod=default/app identity=\"clie##### REDACTED #####nt-a\""
                                   " cache=hit"),
              std::string::npos)
        << last_log_line();
}

TEST_F(NmiHandlerTest, NewSnapshotChangesTheIdentityAndReleasesTheOldSnapshot) {
    NmiHandler handler = make_handler(crds_);
    ASSERT_EQ(get_token(handler).status, 200);
    std::weak_ptr<const CrdSnapshot> first = crds_.snapshot();

    // The same binding and identity names, now with another client id.
    crds_.publish(snapshot({identity("id-a", "client-b")}));
    const Answer answer = get_token(handler);
    ASSERT_EQ(answer.status, 200) << answer.body;
    EXPECT_EQ(token_source_.calls(), 2);
    EXPECT_EQ(token_source_.last_request().identity.client_id, "client-b");
    EXPECT_TRUE(first.expired()) << "a memo still holds the replaced snapshot";

    crds_.publish(snapshot({}));  // unbound
    EXPECT_EQ(get_token(handler).status, 404);
    EXPECT_EQ(token_source_.calls(), 2);
}

TEST_F(NmiHandlerTest, PodIndexChangeChangesTheDecision) {
    crds_.publish(snapshot({identity("id-a", "client-a")}, "sel"));
    auto both = std::make_shared<CrdSnapshot>(*snapshot({identity("id-a", "client-a")}, "sel"));
    both->identities.push_back(identity("id-b", "client-b"));
    both->bindings.push_back(binding("b-id-b", "id-b", "other"));
    crds_.publish(both);
    NmiHandler handler = make_handler(crds_);
    ASSERT_EQ(get_token(handler).status, 200);
    EXPECT_EQ(token_source_.last_request().identity.client_id, "client-a");

    pod_source_.set(PodList{{bound_pod("other")}});  // same IP, relabelled
    reread_pods();
    ASSERT_EQ(get_token(handler).status, 200);
    EXPECT_EQ(token_source_.last_request().identity.client_id, "client-b");

    pod_source_.set(PodList{{bound_pod("nobody")}});
    reread_pods();
    EXPECT_EQ(get_token(handler).status, 404);
}

TEST_F(NmiHandlerTest, ReplacedPodListIsNotKeptAliveByTheMemo) {
    NmiHandler handler = make_handler(crds_);
    ASSERT_EQ(get_token(handler).status, 200);  // remembers the pod of the current list
    std::weak_ptr<const PodList> first = pod_source_.current();
    // A new list with the pod elsewhere: its slot is not reused, yet the old list must go.
    PodInfo moved = bound_pod("sel");
    moved.ips = {"10.0.0.6"};
    pod_source_.set(PodList{{moved}});
    reread_pods();
    EXPECT_TRUE(first.expired()) << "a memo still holds the replaced pod list";
    clock_.advance(std::chrono::seconds{1});    // the miss's own read is due at once
    EXPECT_EQ(get_token(handler).status, 500);  // nobody at 10.0.0.5 now
}

TEST_F(NmiHandlerTest, QuerySelectorsAreNotSharedBetweenRequests) {
    crds_.publish(snapshot({identity("id-a", "client-a"), identity("id-b", "client-b")}));
    NmiHandler handler = make_handler(crds_);
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"resource=https://r1", "client-a"},  // none named: the first by name
        {"resource=https://r2&client_id=client-b", "client-b"},
        {"resource=https://r3&mi_res_id=" + identity("id-b", "").resource_id, "client-b"},
        {"resource=https://r4&object_id=none", ""},
        {"resource=https://r5&client_id=client-c", ""},
    };
    std::vector<Answer> first_round;
    for (const auto& [query, client] : cases) {
        const int calls = token_source_.calls();
        first_round.push_back(get_token(handler, query));
        if (client.empty()) {
            EXPECT_EQ(first_round.back().status, 404) << query;
            EXPECT_EQ(token_source_.calls(), calls) << query;
            continue;
        }
        ASSERT_EQ(first_round.back().status, 200) << query;
        EXPECT_EQ(token_source_.last_request().identity.client_id, client) << query;
    }
    // Again, each query after all the others: the same answers, all from the cache.
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const Answer again = get_token(handler, cases[i].first);
        EXPECT_EQ(again.status, first_round[i].status) << cases[i].first;
        EXPECT_EQ(again.body, first_round[i].body) << cases[i].first;
    }
    EXPECT_EQ(token_source_.calls(), 3);
}

TEST_F(NmiHandlerTest, DecodedResourceIsTheCacheKeyAndTheEcho) {
    NmiHandler handler = make_handler(crds_);
    const Answer decoded = get_token(handler, "resource=https%3A%2F%2Fvault.azure.net");
    ASSERT_EQ(decoded.status, 200);
    EXPECT_EQ(token_source_.last_request().resource, kVault);
    const auto body = nlohmann::json::parse(decoded.body);
    EXPECT_EQ(body["resource"], kVault);
    EXPECT_EQ(get_token(handler).body, decoded.body);  // the same key: a hit
    EXPECT_EQ(token_source_.calls(), 1);
}

TEST_F(NmiHandlerTest, AnotherHandlerOnTheSameThreadNeverUsesThisHandlersMemo) {
    // Two stores at the same generation with different identities behind the same names: a
    // memo keyed only by pod, query and generation would hand client-a to the second handler.
    CrdStore other;
    other.publish(snapshot({identity("id-a", "client-other")}));
    ASSERT_EQ(other.generation(), crds_.generation());
    NmiHandler first = make_handler(crds_);
    NmiHandler second = make_handler(other);
    const Answer a = get_token(first);
    EXPECT_EQ(token_source_.last_request().identity.client_id, "client-a");
    const Answer b = get_token(second, "resource=https://other");
    EXPECT_EQ(token_source_.last_request().identity.client_id, "client-other");
    ASSERT_EQ(a.status, 200);
    ASSERT_EQ(b.status, 200);
    // Alternating keeps each handler on its own decision (and its own cached token).
    for (int round = 0; round < 2; ++round) {
        EXPECT_EQ(get_token(first).body, a.body);
        EXPECT_EQ(get_token(second, "resource=https://other").body, b.body);
    }
    EXPECT_EQ(token_source_.calls(), 2);
}

AzureIdentity multi_tenant(std::vector<std::string> aux) {
    AzureIdentity id = identity("id-sp", "client-sp");
    id.type = static_cast<int>(IdentityType::service_principal);
    id.tenant_id = "tenant-0";
    id.client_password = {.namespace_name = "default", .name = "sp-secret"};
    id.auxiliary_tenant_ids = std::move(aux);
    return id;
}

TEST_F(NmiHandlerTest, ServicePrincipalWithAuxiliaryTenantsAnswersAnArrayPrimaryFirst) {
    crds_.publish(snapshot({multi_tenant({"tenant-1", "tenant-2"})}));
    NmiHandler handler = make_handler(crds_);
    const Answer answer = get_token(handler);
    ASSERT_EQ(answer.status, 200) << answer.body;
    const auto body = nlohmann::json::parse(answer.body);
    ASSERT_TRUE(body.is_array()) << answer.body;
    ASSERT_EQ(body.size(), 3U);
    for (const auto& token : body) {
        EXPECT_EQ(token["resource"], kVault);
        EXPECT_TRUE(token["access_token"].is_string());
    }
    const std::vector<TokenRequest>& requests = token_source_.requests();
    ASSERT_EQ(requests.size(), 3U);
    EXPECT_EQ(requests[0].identity.tenant_id, "tenant-0");
    EXPECT_EQ(requests[1].identity.tenant_id, "tenant-1");
    EXPECT_EQ(requests[2].identity.tenant_id, "tenant-2");
    for (const TokenRequest& r : requests) {
        EXPECT_EQ(r.identity.client_id, "client-sp");
        EXPECT_EQ(r.identity.secret.name, "sp-secret");
        EXPECT_EQ(r.resource, kVault);
    }
    // Every tenant's token is cached: the same answer without another upstream call.
    EXPECT_EQ(get_token(handler).body, answer.body);
    EXPECT_EQ(token_source_.calls(), 3);
}

TEST_F(NmiHandlerTest, HostTokenOfAMultiTenantIdentityIsThePrimaryTokenOnly) {
    crds_.publish(snapshot({multi_tenant({"tenant-1"})}));
    NmiHandler handler = make_handler(crds_);
    const Headers headers{{{"Metadata", "true"}, {"podns", "default"}, {"podname", "app"}}};
    http::HttpRequest request;
    request.method = "GET";
    request.target = "/host/token/?resource=https://vault.azure.net";
    request.peer = asio::ip::make_address("127.0.0.1");
    request.received_at = std::chrono::steady_clock::now();
    request.headers = &headers;
    const http::HttpResponse response = run(handler.handle(request));
    ASSERT_EQ(response.status, 200) << response.body;
    const auto body = nlohmann::json::parse(response.body);
    EXPECT_TRUE(body["token"].is_object()) << response.body;
    EXPECT_EQ(body["clientid"], "client-sp");
    ASSERT_EQ(token_source_.calls(), 1);
    EXPECT_EQ(token_source_.last_request().identity.tenant_id, "tenant-0");
}

TEST_F(NmiHandlerTest, AuxiliaryTenantFailureFailsTheRequest) {
    crds_.publish(snapshot({multi_tenant({"tenant-1"})}));
    NmiHandler handler = make_handler(crds_);
    token_source_.push(
        token_source_.make_token(std::string{kVault}, clock_.unix_seconds() + 3600, "primary"));
    token_source_.push_error(Errc::upstream_refused, 400);
    const Answer answer = get_token(handler);
    EXPECT_EQ(answer.status, 403) << answer.body;
    EXPECT_EQ(token_source_.calls(), 2);
}

TEST_F(NmiHandlerTest, MoreThanThreeAuxiliaryTenantsAreRefusedWithoutAnUpstreamCall) {
    crds_.publish(snapshot({multi_tenant({"t1", "t2", "t3", "t4"})}));
    NmiHandler handler = make_handler(crds_);
    const Answer answer = get_token(handler);
    EXPECT_EQ(answer.status, 503) << answer.body;
    EXPECT_NE(answer.body.find("must specify one to three auxiliary tenants"), std::string::npos)
        << answer.body;
    EXPECT_EQ(token_source_.calls(), 0);
}

TEST_F(NmiHandlerTest, AuxiliaryTenantsOfAManagedIdentityAreIgnored) {
    AzureIdentity id = identity("id-a", "client-a");
    id.auxiliary_tenant_ids = {"tenant-1"};  // meaningful for type 1 only, as in NMI
    crds_.publish(snapshot({id}));
    NmiHandler handler = make_handler(crds_);
    const Answer answer = get_token(handler);
    ASSERT_EQ(answer.status, 200) << answer.body;
    EXPECT_TRUE(nlohmann::json::parse(answer.body).is_object());
    EXPECT_EQ(token_source_.calls(), 1);
}

TEST_F(NmiHandlerTest, HandleNowAnswersAsHandleWouldOrGivesUpWithoutAnyEffect) {
    // The listener asks handle_now() first and handle() only when it gives up: every answer
    // it gives must be handle()'s, and giving up must leave no trace (no audit line, no
    // upstream call, no cache entry) since handle() then does the request again.
    AzureIdentity sp = identity("id-sp", "client-sp");
    sp.type = static_cast<int>(IdentityType::service_principal);
    sp.tenant_id = "t0";  // a service principal the store accepts (issue 11 validation)
    sp.client_password = {.namespace_name = "default", .name = "sp-secret"};
    sp.auxiliary_tenant_ids = {"t1"};
    crds_.publish(snapshot({identity("id-a", "client-a"), sp}));
    NmiHandler handler = make_handler(crds_);
    const Headers metadata{{{"Metadata", "true"}}};
    const Headers none{{}};
    const Headers forwarded{{{"Metadata", "true"}, {"X-Forwarded-For", "1.2.3.4"}}};
    const std::string token = "/metadata/identity/oauth2/token?api-version=2018-02-01&";
    enum class Now { always, never, when_remembered };
    struct Case {
        std::string target;
        const Headers* headers;
        Now answered;  ///< by handle_now(); when_remembered: the pod's last query, cached
    };
    const std::string vault_a = token + "resource=https://vault.azure.net&client_id=client-a";
    const std::string other_a = token + "resource=https://other.example&client_id=client-a";
    const std::vector<Case> cases = {
        {token + "resource=https://vault.azure.net", &none, Now::always},
        {token + "resource=https://vault.azure.net", &forwarded, Now::always},
        {token + "api=1", &metadata, Now::always},
        {vault_a, &metadata, Now::when_remembered},
        {other_a, &metadata, Now::when_remembered},
        {token + "resource=https://vault.azure.net&client_id=nobody", &metadata, Now::never},
        {token + "resource=https://vault.azure.net&client_id=client-sp", &metadata, Now::never},
        {"/metadata/instance?api-version=2021-02-01", &metadata, Now::never},
    };
    for (int round = 0; round < 2; ++round) {
        for (const Case& c : cases) {
            const std::size_t lines = log_lines();
            const int calls = token_source_.calls();
            const std::size_t entries = cache_.stats().entries;
            const std::optional<Answer> now = get_now(handler, c.target, *c.headers);
            if (now) {
                EXPECT_EQ(log_lines(), lines + 1) << c.target;
                EXPECT_EQ(token_source_.calls(), calls) << c.target;
            } else {
                EXPECT_EQ(log_lines(), lines) << c.target;
                EXPECT_EQ(token_source_.calls(), calls) << c.target;
                EXPECT_EQ(cache_.stats().entries, entries) << c.target;
            }
            if (c.answered != Now::when_remembered) {
                EXPECT_EQ(now.has_value(), c.answered == Now::always) << c.target;
            }
            if (c.target.starts_with("/metadata/instance")) {
                continue;  // proxied: no IMDS in this test
            }
            const Answer later = get(handler, c.target, *c.headers);
            if (now) {
                EXPECT_EQ(now->status, later.status) << c.target;
                EXPECT_EQ(now->body, later.body) << c.target;
            }
        }
    }
    // The pod's remembered decision is its last final one (client-sp): client-a's requests are
    // resolved again once, then answered at once for either cached resource.
    const int calls_after_rounds = token_source_.calls();
    EXPECT_FALSE(get_now(handler, vault_a, metadata));
    EXPECT_EQ(get(handler, vault_a).status, 200);
    const std::optional<Answer> vault_now = get_now(handler, vault_a, metadata);
    ASSERT_TRUE(vault_now);
    EXPECT_EQ(vault_now->status, 200);
    const std::optional<Answer> other_now = get_now(handler, other_a, metadata);
    ASSERT_TRUE(other_now);
    EXPECT_EQ(other_now->status, 200);
    EXPECT_EQ(token_source_.calls(), calls_after_rounds);
    // An address the snapshot does not know waits for a read of the pod source: given up.
    const std::size_t lines = log_lines();
    EXPECT_FALSE(
        get_now(handler, token + "resource=https://vault.azure.net", metadata, "10.9.9.9"));
    EXPECT_EQ(log_lines(), lines);
}

}  // namespace
// --crd-max-staleness: a cached token is not served from an identity snapshot the watch has
// not confirmed for longer (a binding deleted while the watch was broken must not keep working
// indefinitely); within the bound, and with the bound off, tokens are served.
TEST_F(NmiHandlerTest, TokensDeniedWhileTheIdentitySnapshotIsOlderThanCrdMaxStaleness) {
    Millis age{0};
    NmiHandler handler{NmiDependencies{.pods = pods_,
                                       .crds = crds_,
                                       .cache = cache_,
                                       .imds = imds_,
                                       .metrics = metrics_,
                                       .clock = clock_,
                                       .ready = [] { return true; },
                                       .crd_max_staleness = Millis{30'000},
                                       .crd_age = [&age] { return age; }},
                       HandlerSettings{}, IdentitySettings{.mode = OperationMode::managed},
                       UpstreamSettings{}};
    EXPECT_EQ(get_token(handler).status, 200);
    age = Millis{30'001};
    const Answer stale = get_token(handler);
    EXPECT_EQ(stale.status, 503);
    EXPECT_NE(stale.body.find("identity data is stale"), std::string::npos) << stale.body;
    age = Millis{30'000};
    EXPECT_EQ(get_token(handler).status, 200);
    // Off (the default): any age is served.
    NmiHandler off = make_handler(crds_);
    age = Millis{1'000'000'000};
    EXPECT_EQ(get_token(off).status, 200);
}

}  // namespace nmid::handlers
