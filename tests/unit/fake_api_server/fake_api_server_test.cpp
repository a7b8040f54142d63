#include "support/fake_api_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "support/http_get.hpp"

namespace nmid::test {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using namespace std::chrono_literals;

using Headers = std::vector<std::pair<std::string, std::string>>;

// A chunked body split into its data and whether the last chunk arrived.
struct Dechunked {
    std::string data;
    bool complete = false;
};

Dechunked dechunk(const std::string& body) {
    Dechunked out;
    std::size_t pos = 0;
    while (pos < body.size()) {
        const auto eol = body.find("\r\n", pos);
        if (eol == std::string::npos) {
            break;
        }
        const std::size_t size = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
        if (size == 0) {
            out.complete = true;
            break;
        }
        out.data += body.substr(eol + 2, size);
        pos = eol + 2 + size + 2;
    }
    return out;
}

std::vector<json> lines_of(const std::string& data) {
    std::vector<json> out;
    std::size_t pos = 0;
    while (pos < data.size()) {
        const auto eol = data.find('\n', pos);
        if (eol == std::string::npos) {
            break;
        }
        out.push_back(json::parse(data.substr(pos, eol - pos)));
        pos = eol + 1;
    }
    return out;
}

json identity(const std::string& name, const std::string& ns = "default") {
    return {{"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec", {{"type", 0}, {"clientID", "c-" + name}}}};
}

json assigned(const std::string& name, const std::string& node) {
    return {{"metadata", {{"name", name}, {"labels", {{"nodename", node}}}}},
            {"spec", {{"nodename", node}}}};
}

json pod(const std::string& name, const std::string& node) {
    json p = {{"metadata", {{"name", name}, {"namespace", "default"}}},
              {"spec", json::object()},
              {"status", {{"phase", "Pending"}}}};
    if (!node.empty()) {
        p["spec"]["nodeName"] = node;
    }
    return p;
}

constexpr std::string_view kIds = "/apis/aadpodidentity.k8s.io/v1/azureidentities";

class FakeApiServerTest : public ::testing::Test {
protected:
    void start(FakeApiServerOptions options = {}) {
        api_ = std::make_unique<FakeApiServer>(ioc_, std::move(options));
    }

    // Runs the server's io_context here while `fut` (a blocking client on another thread)
    // completes. All server state is touched on this thread only.
    template <class T>
    T pump(std::future<T>& fut) {
        const auto end = std::chrono::steady_clock::now() + 10s;
        while (fut.wait_for(0s) != std::future_status::ready &&
               std::chrono::steady_clock::now() < end) {
            ioc_.run_for(2ms);
        }
        return fut.get();
    }

    void pump_until(const std::function<bool()>& done) {
        const auto end = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < end) {
            ioc_.run_for(2ms);
        }
        ASSERT_TRUE(done());
    }

    std::future<std::optional<SimpleResponse>> start_get(const std::string& target,
                                                         Headers headers = {}) {
        const int port = api_->port();
        return std::async(std::launch::async, [port, target, headers = std::move(headers)] {
            return http_request("127.0.0.1", port, "GET", target, headers);
        });
    }

    SimpleResponse get(const std::string& target, Headers headers = {}) {
        auto fut = start_get(target, std::move(headers));
        auto r = pump(fut);
        EXPECT_TRUE(r.has_value()) << target;
        return r.value_or(SimpleResponse{});
    }

    json get_json(const std::string& target, int status = 200) {
        const auto r = get(target);
        EXPECT_EQ(r.status, status) << target << ": " << r.body;
        EXPECT_EQ(r.headers.count("content-type") ? r.headers.at("content-type") : "",
                  "application/json");
        return json::parse(r.body, nullptr, false);
    }

    // Opens a watch and runs the server until it is registered.
    std::future<std::optional<SimpleResponse>> open_watch(const std::string& target) {
        const auto before = api_->watches().size();
        auto fut = start_get(target);
        pump_until([&] { return api_->watches().size() > before; });
        return fut;
    }

    asio::io_context ioc_;
    std::unique_ptr<FakeApiServer> api_;
};

TEST_F(FakeApiServerTest, ListIsShapedLikeTheApiServer) {
    start();
    api_->create("azureidentities", identity("b"));
    api_->create("azureidentities", identity("a", "other"));
    const json list = get_json(std::string{kIds});
    EXPECT_EQ(list["kind"], "AzureIdentityList");
    EXPECT_EQ(list["apiVersion"], "aadpodidentity.k8s.io/v1");
    EXPECT_EQ(list["metadata"]["resourceVersion"], api_->resource_version());
    ASSERT_EQ(list["items"].size(), 2U);
    for (const auto& item : list["items"]) {
        EXPECT_EQ(item["kind"], "AzureIdentity");  // CR items carry kind and apiVersion
        EXPECT_EQ(item["apiVersion"], "aadpodidentity.k8s.io/v1");
        EXPECT_TRUE(item["metadata"]["resourceVersion"].is_string());
        EXPECT_FALSE(item["metadata"]["uid"].get<std::string>().empty());
    }
    const json scoped = get_json("/apis/aadpodidentity.k8s.io/v1/namespaces/other/azureidentities");
    ASSERT_EQ(scoped["items"].size(), 1U);
    EXPECT_EQ(scoped["items"][0]["metadata"]["name"], "a");
    const json empty = get_json("/apis/aadpodidentity.k8s.io/v1/azurepodidentityexceptions");
    EXPECT_TRUE(empty["items"].is_array());
    EXPECT_TRUE(empty["items"].empty());
}

TEST_F(FakeApiServerTest, CoreListItemsHaveNoKind) {
    start();
    api_->create("pods", pod("p", "node-a"));
    const json list = get_json("/api/v1/pods");
    EXPECT_EQ(list["kind"], "PodList");
    EXPECT_EQ(list["apiVersion"], "v1");
    ASSERT_EQ(list["items"].size(), 1U);
    EXPECT_FALSE(list["items"][0].contains("kind"));
    EXPECT_FALSE(list["items"][0].contains("apiVersion"));
    // A single GET carries them.
    const json one = get_json("/api/v1/namespaces/default/pods/p");
    EXPECT_EQ(one["kind"], "Pod");
    EXPECT_EQ(one["apiVersion"], "v1");
}

TEST_F(FakeApiServerTest, LabelAndFieldSelectors) {
    start();
    api_->create("azureassignedidentities", assigned("x", "node-a"));
    api_->create("azureassignedidentities", assigned("y", "node-b"));
    api_->create("pods", pod("p1", "node-a"));
    api_->create("pods", pod("p2", "node-b"));
    api_->create("pods", pod("p3", ""));
    auto names = [](const json& list) {
        std::vector<std::string> out;
        for (const auto& i : list["items"]) {
            out.push_back(i["metadata"]["name"]);
        }
        return out;
    };
    EXPECT_EQ(names(get_json("/apis/aadpodidentity.k8s.io/v1/"
                             "azureassignedidentities?labelSelector=nodename%3Dnode-a")),
              (std::vector<std::string>{"x"}));
    EXPECT_EQ(names(get_json("/apis/aadpodidentity.k8s.io/v1/"
                             "azureassignedidentities?labelSelector=nodename!%3Dnode-a")),
              (std::vector<std::string>{"y"}));
    EXPECT_EQ(names(get_json("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-b")),
              (std::vector<std::string>{"p2"}));
    EXPECT_EQ(names(get_json("/api/v1/pods?fieldSelector=spec.nodeName%3D")),
              (std::vector<std::string>{"p3"}));
    EXPECT_EQ(names(get_json("/api/v1/pods?fieldSelector=metadata.name%3D%3Dp1")),
              (std::vector<std::string>{"p1"}));
    const json bad = get_json("/api/v1/pods?fieldSelector=spec.foo%3Dx", 400);
    EXPECT_EQ(bad["kind"], "Status");
    EXPECT_EQ(bad["reason"], "BadRequest");
    EXPECT_EQ(bad["message"], "field label not supported: spec.foo");
}

TEST_F(FakeApiServerTest, GetOneObjectOrNotFound) {
    start();
    api_->create("secrets", {{"metadata", {{"name", "kv-sp"}, {"namespace", "default"}}},
                             {"data", {{"clientSecret", "c3VwZXI="}}},
                             {"type", "Opaque"}});
    const json secret = get_json("/api/v1/namespaces/default/secrets/kv-sp");
    EXPECT_EQ(secret["kind"], "Secret");
    EXPECT_EQ(secret["data"]["clientSecret"], "c3VwZXI=");
    const json missing = get_json("/api/v1/namespaces/default/secrets/nope", 404);
    EXPECT_EQ(missing["reason"], "NotFound");
    EXPECT_EQ(missing["code"], 404);
    EXPECT_EQ(missing["message"], "secrets \"nope\" not found");
    EXPECT_EQ(missing["details"]["name"], "nope");
    get_json("/api/v1/namespaces/default/widgets", 404);
}

TEST_F(FakeApiServerTest, BearerTokenIsChecked) {
    start({.token = "t1"});
    const auto none = get(std::string{kIds});
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(json::parse(none.body)["reason"], "Unauthorized");
    EXPECT_EQ(get(std::string{kIds}, {{"Authorization", "Bearer t1"}}).status, 200);
    api_->set_token("t2");
    EXPECT_EQ(get(std::string{kIds}, {{"Authorization", "Bearer t1"}}).status, 401);
    EXPECT_EQ(get(std::string{kIds}, {{"Authorization", "Bearer t2"}}).status, 200);
    EXPECT_EQ(api_->requests().back().header("Authorization"), "Bearer t2");
}

TEST_F(FakeApiServerTest, WatchStreamsEventsAndBookmarks) {
    start();
    api_->create("azureidentities", identity("a"));
    const std::string rv = api_->resource_version();
    auto fut =
        open_watch(std::string{kIds} + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + rv +
                   "&timeoutSeconds=412");
    ASSERT_EQ(api_->open_watches(), 1U);
    EXPECT_EQ(api_->watches()[0].resource_version, rv);
    EXPECT_EQ(api_->watches()[0].timeout_seconds, "412");
    EXPECT_TRUE(api_->watches()[0].bookmarks);

    const std::string added = api_->create("azureidentities", identity("b"));
    const std::string modified = api_->update("azureidentities", identity("a"));
    ASSERT_TRUE(api_->remove("azureidentities", "default", "b"));
    const std::string deleted = api_->resource_version();
    api_->bookmark();
    EXPECT_FALSE(api_->remove("azureidentities", "default", "b"));
    api_->end_watches();
    const auto r = pump(fut);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers.at("transfer-encoding"), "chunked");
    const auto body = dechunk(r->body);
    EXPECT_TRUE(body.complete);
    const auto events = lines_of(body.data);
    ASSERT_EQ(events.size(), 4U);
    EXPECT_EQ(events[0]["type"], "ADDED");
    EXPECT_EQ(events[0]["object"]["metadata"]["name"], "b");
    EXPECT_EQ(events[0]["object"]["kind"], "AzureIdentity");
    EXPECT_EQ(events[0]["object"]["metadata"]["resourceVersion"], added);
    EXPECT_EQ(events[1]["type"], "MODIFIED");
    EXPECT_EQ(events[1]["object"]["metadata"]["resourceVersion"], modified);
    EXPECT_EQ(events[2]["type"], "DELETED");
    EXPECT_EQ(events[2]["object"]["metadata"]["resourceVersion"], deleted);
    EXPECT_TRUE(events[2]["object"]["metadata"].contains("deletionTimestamp"));
    EXPECT_EQ(events[3]["type"], "BOOKMARK");
    EXPECT_EQ(events[3]["object"]["metadata"]["resourceVersion"], deleted);
    EXPECT_EQ(events[3]["object"]["kind"], "AzureIdentity");
}

TEST_F(FakeApiServerTest, WatchReplaysHistoryOrStartsWithSyntheticAdds) {
    start();
    const std::string rv1 = api_->create("azureidentities", identity("a"));
    api_->create("azureidentities", identity("b"));
    api_->update("azureidentities", identity("a"));
    auto from_rv = open_watch(std::string{kIds} + "?watch=true&resourceVersion=" + rv1);
    auto from_now = open_watch(std::string{kIds} + "?watch=true");
    api_->bookmark();  // neither asked for bookmarks
    api_->end_watches();
    const auto replay = lines_of(dechunk(pump(from_rv)->body).data);
    ASSERT_EQ(replay.size(), 2U);
    EXPECT_EQ(replay[0]["type"], "ADDED");
    EXPECT_EQ(replay[0]["object"]["metadata"]["name"], "b");
    EXPECT_EQ(replay[1]["type"], "MODIFIED");
    EXPECT_EQ(replay[1]["object"]["metadata"]["name"], "a");
    const auto synthetic = lines_of(dechunk(pump(from_now)->body).data);
    ASSERT_EQ(synthetic.size(), 2U);
    EXPECT_EQ(synthetic[0]["type"], "ADDED");
    EXPECT_EQ(synthetic[1]["type"], "ADDED");
}

TEST_F(FakeApiServerTest, FilteredWatchSeesObjectsEnterAndLeave) {
    start();
    api_->create("pods", pod("p", ""));
    auto fut = open_watch(
        "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dnode-a&"
        "resourceVersion=" +
        api_->resource_version());
    api_->update("pods", pod("p", "node-a"));  // bound to this node: enters the filter
    api_->update("pods", pod("p", "node-a"));
    api_->update("pods", pod("p", "node-b"));  // leaves it
    api_->create("pods", pod("q", "node-b"));  // never matches
    api_->end_watches();
    const auto events = lines_of(dechunk(pump(fut)->body).data);
    ASSERT_EQ(events.size(), 3U);
    EXPECT_EQ(events[0]["type"], "ADDED");
    EXPECT_EQ(events[1]["type"], "MODIFIED");
    EXPECT_EQ(events[2]["type"], "DELETED");
    EXPECT_EQ(events[2]["object"]["spec"]["nodeName"], "node-a");  // the last matching state
    EXPECT_FALSE(events[2]["object"]["metadata"].contains("deletionTimestamp"));
    EXPECT_EQ(events[0]["object"]["kind"], "Pod");  // watch objects carry kind
}

TEST_F(FakeApiServerTest, GoneAsHttpStatusAfterCompaction) {
    start();
    const std::string old = api_->create("azureidentities", identity("a"));
    api_->create("azureidentities", identity("b"));
    api_->compact();
    const auto r = get(std::string{kIds} + "?watch=1&resourceVersion=" + old);
    EXPECT_EQ(r.status, 410);
    const json status = json::parse(r.body);
    EXPECT_EQ(status["reason"], "Expired");
    EXPECT_EQ(status["code"], 410);
    // The current resourceVersion is still fine.
    auto fut =
        open_watch(std::string{kIds} + "?watch=1&resourceVersion=" + api_->resource_version());
    api_->end_watches();
    EXPECT_EQ(pump(fut)->status, 200);
}

TEST_F(FakeApiServerTest, GoneAsErrorEventLikeTheWatchCache) {
    start({.expired_watch_as_error_event = true});
    const std::string old = api_->create("azureidentities", identity("a"));
    api_->create("azureidentities", identity("b"));
    api_->compact();
    const auto r = get(std::string{kIds} + "?watch=1&resourceVersion=" + old);
    EXPECT_EQ(r.status, 200);
    const auto body = dechunk(r.body);
    EXPECT_TRUE(body.complete);
    const auto events = lines_of(body.data);
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0]["type"], "ERROR");
    EXPECT_EQ(events[0]["object"]["code"], 410);
}

TEST_F(FakeApiServerTest, ExpireWatchesSendsErrorAndEnds) {
    start();
    auto fut =
        open_watch(std::string{kIds} + "?watch=1&resourceVersion=" + api_->resource_version());
    api_->expire_watches();
    EXPECT_EQ(api_->open_watches(), 0U);
    const auto body = dechunk(pump(fut)->body);
    EXPECT_TRUE(body.complete);
    const auto events = lines_of(body.data);
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0]["type"], "ERROR");
    EXPECT_EQ(events[0]["object"]["reason"], "Expired");
}

TEST_F(FakeApiServerTest, CutStreamStopsMidLine) {
    start();
    auto fut =
        open_watch(std::string{kIds} + "?watch=1&resourceVersion=" + api_->resource_version());
    api_->create("azureidentities", identity("a"));
    api_->cut_watches("{\"type\":\"ADD");
    const auto body = dechunk(pump(fut)->body);
    EXPECT_FALSE(body.complete);
    EXPECT_NE(body.data.find("\"type\":\"ADDED\""), std::string::npos);
    EXPECT_EQ(body.data.substr(body.data.size() - 12), "{\"type\":\"ADD");
}

TEST_F(FakeApiServerTest, EventsSplitAcrossChunksArriveIntact) {
    start();
    auto fut =
        open_watch(std::string{kIds} + "?watch=1&resourceVersion=" + api_->resource_version());
    api_->push_raw(0, "{\"type\":\"BOOKMARK\",\"obj");
    api_->push_raw(0, "ect\":{\"metadata\":{\"resourceVersion\":\"7\"}}}\n{\"type\":\"BOOKMARK\"");
    api_->push_raw(0, ",\"object\":{\"metadata\":{\"resourceVersion\":\"8\"}}}\n");
    api_->end_watches();
    const auto events = lines_of(dechunk(pump(fut)->body).data);
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[1]["object"]["metadata"]["resourceVersion"], "8");
}

TEST_F(FakeApiServerTest, HeldAnswersWaitForRelease) {
    start();
    api_->set_hold(true);
    auto fut = start_get(std::string{kIds});
    pump_until([&] { return api_->http().held() == 1; });
    EXPECT_NE(fut.wait_for(0s), std::future_status::ready);
    api_->http().release();
    const auto r = pump(fut);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(FakeApiServerTest, InjectedFailures) {
    start();
    api_->fail_next("azureidentities", 500, "InternalError");
    api_->fail_next("secrets", 429, "TooManyRequests", 1, "3");
    const auto failed = get(std::string{kIds});
    EXPECT_EQ(failed.status, 500);
    EXPECT_EQ(json::parse(failed.body)["reason"], "InternalError");
    EXPECT_EQ(get(std::string{kIds}).status, 200);
    const auto throttled = get("/api/v1/namespaces/default/secrets/x");
    EXPECT_EQ(throttled.status, 429);
    EXPECT_EQ(throttled.headers.at("retry-after"), "3");
}

TEST_F(FakeApiServerTest, DiscoveryForKubectl) {
    start();
    const json api = get_json("/api");
    EXPECT_EQ(api["kind"], "APIVersions");
    EXPECT_EQ(api["versions"], json::array({"v1"}));
    const json groups = get_json("/apis");
    EXPECT_EQ(groups["kind"], "APIGroupList");
    ASSERT_EQ(groups["groups"].size(), 1U);
    EXPECT_EQ(groups["groups"][0]["name"], "aadpodidentity.k8s.io");
    EXPECT_EQ(groups["groups"][0]["preferredVersion"]["groupVersion"], "aadpodidentity.k8s.io/v1");
    const json core = get_json("/api/v1");
    EXPECT_EQ(core["kind"], "APIResourceList");
    EXPECT_EQ(core["groupVersion"], "v1");
    EXPECT_EQ(core["resources"].size(), 2U);
    const json crds = get_json("/apis/aadpodidentity.k8s.io/v1");
    EXPECT_EQ(crds["groupVersion"], "aadpodidentity.k8s.io/v1");
    ASSERT_EQ(crds["resources"].size(), 4U);
    bool found = false;
    for (const auto& r : crds["resources"]) {
        if (r["name"] == "azureidentities") {
            found = true;
            EXPECT_EQ(r["kind"], "AzureIdentity");
            EXPECT_EQ(r["namespaced"], true);
            EXPECT_EQ(r["verbs"], json::array({"get", "list", "watch"}));
        }
    }
    EXPECT_TRUE(found);
    EXPECT_EQ(get_json("/version")["major"], "1");
    EXPECT_EQ(get("/openapi/v2").status, 404);
}

TEST_F(FakeApiServerTest, NonNumericResourceVersions) {
    start({.resource_version_prefix = "rv-"});
    const std::string rv = api_->create("azureidentities", identity("a"));
    EXPECT_EQ(rv.rfind("rv-", 0), 0U);
    EXPECT_EQ(get_json(std::string{kIds})["metadata"]["resourceVersion"], rv);
    EXPECT_EQ(get(std::string{kIds} + "?watch=1&resourceVersion=12").status, 400);
    auto fut = open_watch(std::string{kIds} + "?watch=1&resourceVersion=" + rv);
    api_->create("azureidentities", identity("b"));
    api_->end_watches();
    EXPECT_EQ(lines_of(dechunk(pump(fut)->body).data).size(), 1U);
}

TEST_F(FakeApiServerTest, PagingWithLimitAndContinue) {
    start();
    for (const char* n : {"a", "b", "c"}) {
        api_->create("azureidentities", identity(n));
    }
    const json first = get_json(std::string{kIds} + "?limit=2");
    ASSERT_EQ(first["items"].size(), 2U);
    EXPECT_EQ(first["metadata"]["remainingItemCount"], 1);
    const std::string token = first["metadata"]["continue"];
    const json second = get_json(std::string{kIds} + "?limit=2&continue=" + token);
    ASSERT_EQ(second["items"].size(), 1U);
    EXPECT_EQ(second["items"][0]["metadata"]["name"], "c");
    EXPECT_FALSE(second["metadata"].contains("continue"));
    // resourceVersion=0 is served from the cache, which ignores limit.
    EXPECT_EQ(get_json(std::string{kIds} + "?limit=1&resourceVersion=0")["items"].size(), 3U);
    api_->create("azureidentities", identity("d"));
    api_->compact();
    EXPECT_EQ(get(std::string{kIds} + "?limit=2&continue=" + token).status, 410);
}

TEST_F(FakeApiServerTest, ServerFactoryPassesOptionsThrough) {
    int built = 0;
    api_ = std::make_unique<FakeApiServer>(
        FakeApiServerOptions{}, [&](FakeHttpServer::Handler handler) {
            ++built;
            return std::make_unique<FakeHttpServer>(ioc_, std::move(handler), "127.0.0.1");
        });
    EXPECT_EQ(built, 1);
    api_->create("azureidentities", identity("a"));
    EXPECT_EQ(get_json(std::string{kIds})["items"].size(), 1U);
    ASSERT_EQ(api_->requests().size(), 1U);
    EXPECT_EQ(api_->requests()[0].target, kIds);
}

}  // namespace
}  // namespace nmid::test
