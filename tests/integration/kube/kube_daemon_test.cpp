// The real nmid binary in kube mode against fakes of the cluster: pods from a TLS FakeKubelet
// (or the API server's pod watch), identities from a TLS FakeApiServer through a kubeconfig
// with the test CA and a tokenFile, tokens from the IMDS emulator and a FakeAad. Clients bind
// 127.0.0.x so nmid sees them as pod IPs. Waits are on protocol events (the fakes' state,
// nmid's log lines and answers), each with a deadline; nothing sleeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "integration/kube/kube_harness.hpp"

namespace nmid {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using test::bound_pod;
using test::KubeCluster;
using test::token_appid;
using Clock = std::chrono::steady_clock;

const test::TestIdentity kReader = test::test_identity("kv-reader", "a1");
const test::TestIdentity kWriter = test::test_identity("kv-writer", "b2");

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

class KubeDaemon : public ::testing::Test {
protected:
    void SetUp() override {
        if (!KubeCluster::binaries_built()) {
            GTEST_SKIP() << "nmid or imds-emulator not built in " << NMID_BIN_DIR;
        }
        cluster_ = std::make_unique<KubeCluster>();
    }
    void TearDown() override { cluster_.reset(); }

    KubeCluster& c() { return *cluster_; }

    /// kv-reader bound to selector kv-reader; kv-writer exists unbound. Pods: demo
    /// (127.0.0.2, kv-reader) and unbound (127.0.0.3, no selector).
    void seed() {
        c().on_fakes([&] {
            c().api().create("azureidentities", test::identity_object(kReader));
            c().api().create("azureidentities", test::identity_object(kWriter));
            c().api().create("azureidentitybindings",
                             test::binding_object("kv-reader-binding", "kv-reader", "kv-reader"));
            c().kubelet().put(bound_pod("demo", "127.0.0.2", "kv-reader"));
            c().kubelet().put(bound_pod("unbound", "127.0.0.3", ""));
        });
    }

    void start(const std::vector<std::string>& extra = {}) {
        c().start_emulator({kReader, kWriter});
        c().start_nmid(extra);
        ASSERT_TRUE(c().wait_ready()) << c().nmid().output();
    }

    /// Status of a token request from `ip` (-1: no answer).
    int status_of(const std::string& ip) {
        const auto r = c().token(ip);
        return r ? r->status : -1;
    }

    /// The client id of the identity a token request from `ip` was served as ("" when it
    /// was not served).
    std::string appid_of(const std::string& ip) {
        const auto r = c().token(ip);
        return r && r->status == 200 ? token_appid(*r) : std::string{};
    }

    /// Requests from `ip` until the answer satisfies `done` (5 s at most); that answer, or
    /// nullopt when none did.
    std::optional<test::SimpleResponse> poll_token(
        const std::string& ip, const std::function<bool(const test::SimpleResponse&)>& done) {
        for (const auto start = Clock::now(); Clock::now() - start < 5s;) {
            auto r = c().token(ip);
            if (r && done(*r)) {
                return r;
            }
        }
        return std::nullopt;
    }
    /// The first 200 answer to `ip` (polled, 5 s at most).
    std::optional<test::SimpleResponse> served(const std::string& ip) {
        return poll_token(ip, [](const test::SimpleResponse& r) { return r.status == 200; });
    }
    /// The first non-200 answer to `ip` (polled, 5 s at most).
    std::optional<test::SimpleResponse> denied(const std::string& ip) {
        return poll_token(ip, [](const test::SimpleResponse& r) { return r.status != 200; });
    }

    /// Binds kv-writer to selector kv-writer. On the fake thread.
    void bind_writer() {
        c().api().create("azureidentitybindings",
                         test::binding_object("kv-writer-binding", "kv-writer", "kv-writer"));
    }

    /// Requests from `ip` while the fakes do not satisfy `pred`; every answer must be 200.
    /// Returns the number of requests made (all 200) or -1 when `pred` never held.
    int requests_until(const std::string& ip, const std::function<bool()>& pred) {
        const auto start = Clock::now();
        int n = 0;
        while (Clock::now() - start < 10s) {
            if (c().on_fakes(pred)) {
                return n;
            }
            auto r = c().token(ip);
            EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
            ++n;
        }
        return -1;
    }

    std::unique_ptr<KubeCluster> cluster_;
};

TEST_F(KubeDaemon, BecomesReadyFromTheKubeletAndTheApiServerAndServesTokens) {
    seed();
    // The first kubelet read is refused (RBAC without nodes/proxy), the next one is held:
    // not ready, and pods are told to retry.
    c().on_fakes([&] {
        c().kubelet().script(test::plain_text(
            403,
            "Forbidden (user=system:serviceaccount:kube-system:nmid, verb=get, resource=nodes, "
            "subresource=proxy)"));
        c().kubelet().set_hold(true);
    });
    c().start_emulator({kReader, kWriter});
    c().start_nmid();
    ASSERT_TRUE(c().wait_fakes([&] { return c().kubelet().held() >= 1; }));
    EXPECT_EQ(c().metric("nmid_kubelet_last_status"), 403);
    EXPECT_EQ(c().metric("nmid_kubelet_pod_read_failures_total"), 1);
    auto readyz = test::http_get("127.0.0.1", c().probe_port(), "/readyz");
    ASSERT_TRUE(readyz);
    EXPECT_EQ(readyz->status, 503) << readyz->body;
    EXPECT_NE(readyz->body.find("/pods"), std::string::npos) << readyz->body;
    auto early = c().token("127.0.0.2");
    ASSERT_TRUE(early);
    EXPECT_EQ(early->status, 503) << early->body;

    c().on_fakes([&] {
        c().kubelet().set_hold(false);
        c().kubelet().release();
    });
    ASSERT_TRUE(c().wait_ready()) << c().nmid().output();
    auto bound = c().token("127.0.0.2");
    ASSERT_TRUE(bound);
    ASSERT_EQ(bound->status, 200) << bound->body;
    EXPECT_EQ(token_appid(*bound), kReader.client_id);
    auto unbound = c().token("127.0.0.3");
    ASSERT_TRUE(unbound);
    EXPECT_EQ(unbound->status, 404) << unbound->body;

    c().on_fakes([&] {
        // Every kubelet and API-server request carried the service account's token.
        for (const auto& r : c().kubelet().received()) {
            EXPECT_EQ(r.header("Authorization"), "Bearer " + test::kInitialToken);
            EXPECT_EQ(r.target, "/pods");
        }
        for (const auto& r : c().api().requests()) {
            EXPECT_EQ(r.header("Authorization"), "Bearer " + test::kInitialToken) << r.target;
        }
        // Managed mode: the three kinds, all namespaces, with bookmarks; no assignments.
        std::vector<std::string> watched;
        for (const auto& w : c().api().watches()) {
            EXPECT_TRUE(w.namespace_name.empty()) << w.plural;
            EXPECT_TRUE(w.bookmarks) << w.plural;
            EXPECT_FALSE(w.resource_version.empty()) << w.plural;
            watched.push_back(w.plural);
        }
        std::sort(watched.begin(), watched.end());
        EXPECT_EQ(watched, (std::vector<std::string>{"azureidentities", "azureidentitybindings",
                                                     "azurepodidentityexceptions"}));
    });
}

TEST_F(KubeDaemon, BindingAddedIsServedAndBindingDeletedIsDeniedWithinOneSecond) {
    seed();
    c().on_fakes([&] { c().kubelet().put(bound_pod("writer", "127.0.0.5", "kv-writer")); });
    start();
    auto before = c().token("127.0.0.5");
    ASSERT_TRUE(before);
    EXPECT_EQ(before->status, 404) << before->body;

    const auto added_at = Clock::now();
    c().on_fakes([&] { bind_writer(); });
    auto ok = served("127.0.0.5");
    ASSERT_TRUE(ok) << c().nmid().output();
    EXPECT_EQ(token_appid(*ok), kWriter.client_id);
    const double add_ms = ms_since(added_at);
    EXPECT_LT(add_ms, 1000) << "binding added -> served took " << add_ms << " ms";

    const auto removed_at = Clock::now();
    c().on_fakes([&] {
        ASSERT_TRUE(c().api().remove("azureidentitybindings", "default", "kv-writer-binding"));
    });
    auto refused = denied("127.0.0.5");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 404) << refused->body;
    const double remove_ms = ms_since(removed_at);
    EXPECT_LT(remove_ms, 1000) << "binding deleted -> denied took " << remove_ms << " ms";
    std::cout << "[ figures ] binding added -> served " << add_ms << " ms, deleted -> denied "
              << remove_ms << " ms\n";
}

// Both forms of 410: an ERROR event on open watches, and an HTTP 410 answer to a watch from a
// compacted resourceVersion (after the fake ends the watches). The three relisting LISTs are
// held while requests keep coming: the previous identities stay in force until the new lists
// replace them.
TEST_F(KubeDaemon, GoneRelistsWithoutAGap) {
    seed();
    start();
    ASSERT_EQ(status_of("127.0.0.2"), 200);
    const auto lists_held = [&] { return c().api().http().held() >= 3; };

    for (const bool as_event : {true, false}) {
        SCOPED_TRACE(as_event ? "ERROR event" : "HTTP 410");
        const std::size_t mark = c().on_fakes([&] {
            const std::size_t m = c().api().watches().size();
            c().api().set_hold(true);
            // History moves on in a kind nmid does not watch (resourceVersions are global),
            // then is compacted: nmid's resourceVersion is now too old.
            c().api().create("secrets", Json{{"metadata", {{"name", "unrelated"}}}});
            c().api().compact();
            if (as_event) {
                c().api().expire_watches();
            } else {
                c().api().end_watches();  // re-watched from a compacted resourceVersion
            }
            return m;
        });
        const int before_lists = requests_until("127.0.0.2", lists_held);
        ASSERT_GE(before_lists, 0) << c().nmid().output();
        // Relisting (the LISTs are held): still served, every time.
        for (int i = 0; i < 20; ++i) {
            auto r = c().token("127.0.0.2");
            ASSERT_TRUE(r);
            EXPECT_EQ(r->status, 200) << r->body;
            EXPECT_EQ(token_appid(*r), kReader.client_id);
        }
        c().on_fakes([&] {
            c().api().set_hold(false);
            c().api().http().release();
        });
        // The relists completed and the watches resumed from them.
        ASSERT_TRUE(c().wait_fakes([&] {
            const auto& w = c().api().watches();
            std::size_t fresh = 0;
            for (std::size_t i = mark; i < w.size(); ++i) {
                fresh += w[i].ended ? 0 : 1;
            }
            return fresh == 3 && c().api().open_watches() == 3;
        })) << c().nmid().output();
        EXPECT_EQ(status_of("127.0.0.2"), 200);
    }
    // Changes after the relists arrive through the new watches.
    c().on_fakes([&] {
        c().kubelet().put(bound_pod("writer", "127.0.0.40", "kv-writer"));
        bind_writer();
    });
    auto ok = served("127.0.0.40");
    ASSERT_TRUE(ok) << c().nmid().output();
    EXPECT_EQ(token_appid(*ok), kWriter.client_id);
    // Three kinds, twice.
    EXPECT_GE(c().metric("nmid_crd_gone_total"), 6);
    EXPECT_GE(c().metric("nmid_crd_relists_total"), 6);
}

// The kubelet is polled only every hour here: the only reads are the ones requests trigger.
TEST_F(KubeDaemon, NewKubeletPodGetsItsFirstTokenFromTheReadItsRequestTriggers) {
    seed();
    start({"--kubelet-poll-interval=1h"});
    ASSERT_EQ(status_of("127.0.0.2"), 200);  // the identity's token is cached
    std::vector<double> figures;
    for (int i = 0; i < 5; ++i) {
        const std::string ip = "127.0.0." + std::to_string(50 + i);
        const auto [generation, reads] = c().on_fakes([&] {
            const auto g =
                c().kubelet().put(bound_pod("new-" + std::to_string(i), ip, "kv-reader"));
            return std::pair{g, c().kubelet().reads()};
        });
        const auto start_at = Clock::now();
        auto r = c().token(ip);
        const double ms = ms_since(start_at);
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status, 200) << r->body;
        EXPECT_EQ(token_appid(*r), kReader.client_id);
        c().on_fakes([&, generation = generation, reads = reads] {
            EXPECT_GT(c().kubelet().reads(), reads);
            EXPECT_GE(c().kubelet().last_read_generation(), generation);
        });
        EXPECT_LT(ms, 1000) << "pod " << ip;
        figures.push_back(ms);
    }
    std::cout << "[ figures ] new pod -> first token (ms):";
    for (double f : figures) {
        std::cout << " " << f;
    }
    std::cout << "\n";
}

// The IP of pod `old` (kv-reader) goes to pod `new` (kv-writer); the kubelet lists the old
// pod Succeeded and the new one Running, as it does until the old one is removed. Both
// identities' tokens are cached, so a stale mapping would be answered at once. After the
// swap plus --pod-freshness, every answer must be kv-writer's (or a denial).
TEST_F(KubeDaemon, ReusedPodIpIsNeverServedAsTheOldPodPastTheFreshnessBound) {
    constexpr auto kFreshness = 300ms;
    seed();
    c().on_fakes([&] {
        bind_writer();
        c().kubelet().put(bound_pod("old", "127.0.0.7", "kv-reader"));
        c().kubelet().put(bound_pod("warm", "127.0.0.8", "kv-writer"));
    });
    start({"--kubelet-poll-interval=1h", "--pod-freshness=300ms"});
    auto old_answer = c().token("127.0.0.7");
    ASSERT_TRUE(old_answer);
    ASSERT_EQ(old_answer->status, 200);
    ASSERT_EQ(token_appid(*old_answer), kReader.client_id);
    ASSERT_EQ(appid_of("127.0.0.8"), kWriter.client_id);

    const auto swapped_at = c().on_fakes([&] {
        auto old_pod = bound_pod("old", "127.0.0.7", "kv-reader");
        old_pod.phase = "Succeeded";
        c().kubelet().put(old_pod);
        c().kubelet().put(bound_pod("new", "127.0.0.7", "kv-writer"));
        return Clock::now();
    });
    const auto bound_at = swapped_at + kFreshness;
    int stale_after_bound = 0;
    int new_answers = 0;
    int late_requests = 0;
    double last_old_ms = -1;
    std::string last_appid;
    while (Clock::now() < bound_at + 1500ms) {
        const auto sent = Clock::now();
        auto r = c().token("127.0.0.7");
        ASSERT_TRUE(r);
        const std::string appid = r->status == 200 ? token_appid(*r) : "";
        if (appid == kReader.client_id) {
            last_old_ms = std::chrono::duration<double, std::milli>(sent - swapped_at).count();
            stale_after_bound += sent > bound_at ? 1 : 0;
        }
        new_answers += appid == kWriter.client_id ? 1 : 0;
        late_requests += sent > bound_at ? 1 : 0;
        last_appid = appid;
    }
    EXPECT_EQ(stale_after_bound, 0) << "old pod served " << last_old_ms << " ms after the swap";
    EXPECT_GT(late_requests, 10);
    EXPECT_GT(new_answers, 0);
    EXPECT_EQ(last_appid, kWriter.client_id);
    std::cout << "[ figures ] old pod last served " << last_old_ms
              << " ms after the swap (bound 300 ms)\n";
}

// client-go's behaviour: the token file is re-read every minute and after any 401. The
// file changes and both fakes start requiring the new token; the kubelet (polled every
// 100 ms) and the API server (whose watches are ended, so nmid reconnects) answer 401 until
// nmid re-reads the file, well before the one-minute re-read.
TEST_F(KubeDaemon, RotatedServiceAccountTokenIsPickedUp) {
    const std::string rotated = "sa-token-2";
    seed();
    start({"--kubelet-poll-interval=100ms"});
    ASSERT_EQ(status_of("127.0.0.2"), 200);

    c().write_token(rotated);
    const auto [kubelet_mark, api_mark, reads_mark] = c().on_fakes([&] {
        c().kubelet().set_token(rotated);
        c().api().set_token(rotated);
        const auto marks = std::tuple{c().kubelet().received().size(), c().api().watches().size(),
                                      c().kubelet().reads()};
        c().api().end_watches();
        return marks;
    });
    const auto bearer = "Bearer " + rotated;
    ASSERT_TRUE(c().wait_fakes([&, kubelet_mark = kubelet_mark, reads_mark = reads_mark] {
        const auto& got = c().kubelet().received();
        return c().kubelet().unauthorized() >= 1 && c().kubelet().reads() > reads_mark &&
               got.size() > kubelet_mark + 1 && got.back().header("Authorization") == bearer;
    })) << c().nmid().output();
    ASSERT_TRUE(c().wait_fakes([&, api_mark = api_mark] {
        std::size_t open_with_new_token = 0;
        const auto& w = c().api().watches();
        for (std::size_t i = api_mark; i < w.size(); ++i) {
            const auto& req = c().api().requests()[w[i].request];
            open_with_new_token += !w[i].ended && req.header("Authorization") == bearer ? 1 : 0;
        }
        return open_with_new_token == 3;
    })) << c().nmid().output();

    // Working on the new token: a new pod and a new binding arrive and are served.
    c().on_fakes([&] {
        bind_writer();
        c().kubelet().put(bound_pod("after-rotation", "127.0.0.9", "kv-writer"));
    });
    auto ok = served("127.0.0.9");
    ASSERT_TRUE(ok) << c().nmid().output();
    EXPECT_EQ(token_appid(*ok), kWriter.client_id);
    c().on_fakes([&] {
        // Once re-read, the old token is not sent again.
        const auto& got = c().kubelet().received();
        EXPECT_EQ(got.back().header("Authorization"), bearer);
        EXPECT_EQ(c().api().requests().back().header("Authorization"), bearer);
    });
}

TEST_F(KubeDaemon, ApiServerPodSourceServesThisNodesPodsFromTheWatch) {
    seed();
    c().on_fakes([&] {
        c().api().create("pods", test::kubelet_pod(bound_pod("demo", "127.0.0.2", "kv-reader")));
        c().api().create(
            "pods", test::kubelet_pod(bound_pod("elsewhere", "127.0.0.10", "kv-reader", "node-2")));
    });
    start({"--pod-source=apiserver"});
    auto r = c().token("127.0.0.2");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(token_appid(*r), kReader.client_id);
    auto other_node = c().token("127.0.0.10");
    ASSERT_TRUE(other_node);
    EXPECT_NE(other_node->status, 200) << "a pod of node-2 must not be known on node-1";

    const auto added_at = Clock::now();
    c().on_fakes([&] {
        c().api().create("pods", test::kubelet_pod(bound_pod("later", "127.0.0.11", "kv-reader")));
    });
    auto ok = served("127.0.0.11");
    ASSERT_TRUE(ok) << c().nmid().output();
    EXPECT_LT(ms_since(added_at), 1000);
    c().on_fakes([&] { ASSERT_TRUE(c().api().remove("pods", "default", "later")); });
    auto gone = denied("127.0.0.11");
    ASSERT_TRUE(gone);

    c().on_fakes([&] {
        EXPECT_EQ(c().kubelet().requests(), 0U) << "no kubelet in apiserver mode";
        bool pod_watch = false;
        for (const auto& w : c().api().watches()) {
            if (w.plural == "pods") {
                pod_watch = true;
                EXPECT_NE(w.field_selector.find("spec.nodeName"), std::string::npos);
                EXPECT_NE(w.field_selector.find("node-1"), std::string::npos);
                EXPECT_TRUE(w.namespace_name.empty());
            }
        }
        EXPECT_TRUE(pod_watch);
    });
}

TEST_F(KubeDaemon, StandardModeAnswersWhenMicsAssignmentArrivesThroughTheWatch) {
    seed();
    start({"--operation-mode=standard"});
    auto unselected = c().token("127.0.0.3");
    ASSERT_TRUE(unselected);
    EXPECT_EQ(unselected->status, 404) << "a pod no binding selects is answered at once";

    std::optional<test::SimpleResponse> answer;
    Clock::time_point answered_at;
    std::thread client{[&] {
        answer = c().token("127.0.0.2", test::kVaultResource, 60s);
        answered_at = Clock::now();
    }};
    bool parked = false;
    for (const auto start_at = Clock::now(); !parked && Clock::now() - start_at < 10s;) {
        parked = c().metric("nmid_assignment_waiters") == 1;
    }
    EXPECT_TRUE(parked);
    const auto assigned_at = Clock::now();
    c().on_fakes([&] {
        const auto identity = *c().api().object("azureidentities", "default", "kv-reader");
        const auto binding =
            *c().api().object("azureidentitybindings", "default", "kv-reader-binding");
        c().api().create("azureassignedidentities",
                         test::assigned_object(identity, binding, "demo", "node-1", "Assigned"));
    });
    client.join();
    ASSERT_TRUE(answer);
    ASSERT_EQ(answer->status, 200) << answer->body;
    EXPECT_EQ(token_appid(*answer), kReader.client_id);
    const double ms = std::chrono::duration<double, std::milli>(answered_at - assigned_at).count();
    EXPECT_LT(ms, 1000);
    std::cout << "[ figures ] assignment created -> waiting request answered " << ms << " ms\n";
    c().on_fakes([&] {
        bool assigned_watch = false;
        for (const auto& w : c().api().watches()) {
            if (w.plural == "azureassignedidentities") {
                assigned_watch = true;
                EXPECT_NE(w.label_selector.find("nodename"), std::string::npos);
                EXPECT_NE(w.label_selector.find("node-1"), std::string::npos);
            }
        }
        EXPECT_TRUE(assigned_watch);
    });
}

// AzureIdentity type 1: the client secret comes from a Secret read through the API server
// (once, then cached) and the token from AAD (spec.adEndpoint points at the fake).
TEST_F(KubeDaemon, ServicePrincipalWithAClientSecretGetsItsTokenFromAad) {
    const std::string client_id = "00000000-0000-0000-0000-0000000000c3";
    const std::string tenant = "11111111-2222-3333-4444-555555555555";
    const std::string secret = "sp-secret-value";
    seed();
    c().on_fakes([&] {
        c().aad().add_secret_client(client_id, secret);
        c().api().create("secrets",
                         Json{{"metadata", {{"name", "sp-credentials"}, {"namespace", "default"}}},
                              {"type", "Opaque"},
                              {"data", {{"clientSecret", test::base64_encode(secret)}}}});
        c().api().create(
            "azureidentities",
            Json{{"metadata", {{"name", "sp"}, {"namespace", "default"}}},
                 {"spec",
                  {{"type", 1},
                   {"tenantID", tenant},
                   {"clientID", client_id},
                   {"clientPassword", {{"name", "sp-credentials"}, {"namespace", "default"}}},
                   {"adEndpoint", c().aad().ad_endpoint()}}}});
        c().api().create("azureidentitybindings", test::binding_object("sp-binding", "sp", "sp"));
        c().kubelet().put(bound_pod("sp-pod", "127.0.0.12", "sp"));
    });
    start();
    auto r = c().token("127.0.0.12");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto body = Json::parse(r->body, nullptr, false);
    EXPECT_EQ(body["resource"], test::kVaultResource);
    EXPECT_EQ(body["token_type"], "Bearer");
    auto again = c().token("127.0.0.12");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
    EXPECT_EQ(Json::parse(again->body, nullptr, false)["access_token"], body["access_token"]);
    c().on_fakes([&] {
        const auto& calls = c().aad().calls();
        ASSERT_EQ(calls.size(), 1U) << "the second request is answered from the cache";
        EXPECT_EQ(calls[0].rejection, "");
        EXPECT_EQ(calls[0].status, 200);
        EXPECT_EQ(calls[0].tenant, tenant);
        EXPECT_EQ(calls[0].form.at("grant_type"), "client_credentials");
        EXPECT_EQ(calls[0].form.at("client_id"), client_id);
        EXPECT_EQ(calls[0].form.at("client_secret"), secret);
        EXPECT_EQ(calls[0].form.at("resource"), test::kVaultResource);
        std::size_t secret_reads = 0;
        for (const auto& req : c().api().requests()) {
            secret_reads +=
                req.target.find("/namespaces/default/secrets/sp-credentials") != std::string::npos;
        }
        EXPECT_EQ(secret_reads, 1U);
    });
}

// Issue 11 finding 2: an AzureIdentity naming neither a client ID nor a resource ID made nmid
// ask IMDS for a token without client_id, which IMDS answers with the node's own identity.
// It is refused at snapshot time: the pod gets no token and IMDS never hears of it.
TEST_F(KubeDaemon, AnIdentityNamingNoIdentityIsRefusedAndNothingReachesImds) {
    seed();
    c().on_fakes([&] {
        c().api().create("azureidentities",
                         Json{{"metadata", {{"name", "nameless"}, {"namespace", "default"}}},
                              {"spec", {{"type", 0}, {"clientID", ""}}}});
        c().api().create("azureidentitybindings",
                         test::binding_object("nameless-binding", "nameless", "nameless"));
        c().kubelet().put(bound_pod("greedy", "127.0.0.14", "nameless"));
    });
    start();
    const auto r = c().token("127.0.0.14");
    ASSERT_TRUE(r);
    EXPECT_NE(r->status, 200) << r->body;
    EXPECT_EQ(c().emulator_stats()["token_requests"], 0) << c().emulator_stats().dump();
    EXPECT_NE(c().nmid().output().find(
                  "identity refused: AzureIdentity default/nameless (resourceVersion rv-"),
              std::string::npos)
        << c().nmid().output();
    // The bound pod next to it is served as before.
    EXPECT_EQ(appid_of("127.0.0.2"), kReader.client_id);
}

/// A type 1 AzureIdentity `name` in `ns` naming Secret `secret_ns`/`secret` at `endpoint`.
Json service_principal(const std::string& name, const std::string& ns, const std::string& secret_ns,
                       const std::string& secret, const std::string& endpoint) {
    return Json{{"metadata", {{"name", name}, {"namespace", ns}}},
                {"spec",
                 {{"type", 1},
                  {"tenantID", "11111111-2222-3333-4444-555555555555"},
                  {"clientID", "00000000-0000-0000-0000-0000000000c4"},
                  {"clientPassword", {{"name", secret}, {"namespace", secret_ns}}},
                  {"adEndpoint", endpoint}}}};
}

// Issue 11 finding 3: a tenant in namespace team-b pointed an identity at team-a's Secret and
// received it in the POST body. Refused: nmid never reads team-a's Secret for team-b.
TEST_F(KubeDaemon, AServicePrincipalNamingAnotherNamespacesSecretIsRefusedAndTheSecretNeverRead) {
    seed();
    c().on_fakes([&] {
        c().aad().add_secret_client("00000000-0000-0000-0000-0000000000c4", "team-a-secret");
        c().api().create("secrets",
                         Json{{"metadata", {{"name", "sp-credentials"}, {"namespace", "team-a"}}},
                              {"type", "Opaque"},
                              {"data", {{"clientSecret", test::base64_encode("team-a-secret")}}}});
        c().api().create("azureidentities",
                         service_principal("thief", "team-b", "team-a", "sp-credentials",
                                           c().aad().ad_endpoint()));
        c().api().create("azureidentitybindings",
                         test::binding_object("thief-binding", "thief", "thief", "team-b"));
        auto pod = bound_pod("thief-pod", "127.0.0.15", "thief");
        pod.namespace_name = "team-b";
        c().kubelet().put(pod);
    });
    start();
    const auto r = c().token("127.0.0.15");
    ASSERT_TRUE(r);
    EXPECT_NE(r->status, 200) << r->body;
    EXPECT_EQ(r->body.find("access_token"), std::string::npos) << r->body;
    c().on_fakes([&] {
        EXPECT_TRUE(c().aad().calls().empty());
        for (const auto& req : c().api().requests()) {
            EXPECT_EQ(req.target.find("/secrets/"), std::string::npos) << req.target;
        }
    });
    EXPECT_NE(c().nmid().output().find("team-b/thief (resourceVersion rv-"), std::string::npos);
    EXPECT_NE(c().nmid().output().find("cross_namespace_secret"), std::string::npos);
}

// Issue 11 finding 3: adEndpoint could be any URL, plain http included. Only https to an Azure
// AD authority or a host of --aad-authority-allowlist (here 127.0.0.1, the fake's) is used.
TEST_F(KubeDaemon, AServicePrincipalWithAnHttpOrUnlistedEndpointIsRefused) {
    seed();
    std::unique_ptr<test::FakeAad> plain;
    c().on_fakes([&] {
        plain = std::make_unique<test::FakeAad>(c().fakes_ioc(), [] { return std::int64_t{0}; });
        for (auto* aad : {&c().aad(), plain.get()}) {
            aad->add_secret_client("00000000-0000-0000-0000-0000000000c4", "own-secret");
        }
        c().api().create("secrets",
                         Json{{"metadata", {{"name", "sp-credentials"}, {"namespace", "default"}}},
                              {"type", "Opaque"},
                              {"data", {{"clientSecret", test::base64_encode("own-secret")}}}});
        const std::string fake_port = std::to_string(c().aad().port());
        const std::vector<std::pair<std::string, std::string>> endpoints = {
            {"plain-http", plain->ad_endpoint()},                  // http://127.0.0.1:...
            {"unlisted", "https://localhost:" + fake_port + "/"},  // not in the allowlist
            {"listed", c().aad().ad_endpoint()},                   // https://127.0.0.1:...
        };
        for (std::size_t i = 0; i < endpoints.size(); ++i) {
            const auto& [name, endpoint] = endpoints[i];
            c().api().create("azureidentities", service_principal(name, "default", "default",
                                                                  "sp-credentials", endpoint));
            c().api().create("azureidentitybindings",
                             test::binding_object(name + "-binding", name, name));
            c().kubelet().put(bound_pod(name + "-pod", "127.0.0." + std::to_string(21 + i), name));
        }
    });
    start();
    auto plain_answer = c().token("127.0.0.21");
    auto unlisted_answer = c().token("127.0.0.22");
    auto listed_answer = c().token("127.0.0.23");
    ASSERT_TRUE(plain_answer && unlisted_answer && listed_answer);
    EXPECT_NE(plain_answer->status, 200) << plain_answer->body;
    EXPECT_NE(unlisted_answer->status, 200) << unlisted_answer->body;
    EXPECT_EQ(listed_answer->status, 200) << listed_answer->body;
    c().on_fakes([&] {
        EXPECT_TRUE(plain->calls().empty());
        EXPECT_EQ(c().aad().calls().size(), 1U);  // the allowed endpoint's only
        plain.reset();
    });
    const std::string out = c().nmid().output();
    EXPECT_NE(out.find("default/plain-http (resourceVersion rv-"), std::string::npos) << out;
    EXPECT_NE(out.find("ad_endpoint_not_https"), std::string::npos);
    EXPECT_NE(out.find("adEndpoint host localhost:" +
                       std::to_string(c().on_fakes([&] { return c().aad().port(); })) +
                       " is not an Azure AD authority"),
              std::string::npos)
        << out;
}

TEST_F(KubeDaemon, SigtermExitsZeroPromptlyWithWatchesOpen) {
    seed();
    start();
    ASSERT_TRUE(c().wait_fakes([&] { return c().api().open_watches() == 3; }));
    const auto start_at = Clock::now();
    EXPECT_EQ(c().nmid().signal_and_wait(SIGTERM, 10s), 0) << c().nmid().output();
    EXPECT_LT(ms_since(start_at), 1000);
    EXPECT_NE(c().nmid().output().find("exiting with 0"), std::string::npos);
}

// A kubelet that never answers: the read in flight holds the exit back until its deadline
// (--pod-refresh-deadline), never longer. (Cancelling the read at shutdown would make this
// immediate; see the pod index's detached read.)
TEST_F(KubeDaemon, SigtermWithAKubeletReadHangingExitsZeroWithinThePodRefreshDeadline) {
    seed();
    start({"--pod-refresh-deadline=500ms"});
    c().on_fakes([&] { c().kubelet().set_hold(true); });
    ASSERT_TRUE(
        c().wait_fakes([&] { return c().api().open_watches() == 3 && c().kubelet().held() >= 1; }));
    const auto start_at = Clock::now();
    EXPECT_EQ(c().nmid().signal_and_wait(SIGTERM, 10s), 0) << c().nmid().output();
    EXPECT_LT(ms_since(start_at), 1500);
}

}  // namespace
}  // namespace nmid
