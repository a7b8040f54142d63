#include "nmid/crd/api_server_source.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/manual_clock.hpp"
#include "support/read_only_api_client.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// parse_watch_event

struct ParseCase {
    const char* name;
    std::string line;
    bool ok;
    WatchEventType type = WatchEventType::added;
    std::string rv{};
    int code = 0;
    std::string reason{};
};

TEST(ParseWatchEvent, Table) {
    const std::vector<ParseCase> cases = {
        {"added",
         R"({"type":"ADDED","object":{"kind":"AzureIdentity","metadata":{"name":"a","resourceVersion":"12"}}})",
         true, WatchEventType::added, "12"},
        {"modified with spaces and CR",
         "  {\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"x-1\"}}}\r",
         true, WatchEventType::modified, "x-1"},
        {"deleted",
         R"({"type":"DELETED","object":{"metadata":{"name":"a","resourceVersion":"9"}}})", true,
         WatchEventType::deleted, "9"},
        {"bookmark", R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"4790"}}})",
         true, WatchEventType::bookmark, "4790"},
        {"bookmark without rv", R"({"type":"BOOKMARK","object":{}})", true,
         WatchEventType::bookmark, ""},
        {"null metadata", R"({"type":"ADDED","object":{"metadata":null}})", true,
         WatchEventType::added, ""},
        {"error 410",
         R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}})j",
         true, WatchEventType::error, "", 410, "Expired"},
        {"error without code", R"({"type":"ERROR","object":{"kind":"Status","reason":"X"}})", true,
         WatchEventType::error, "", 0, "X"},
        {"empty", "", false},
        {"whitespace", "  \r", false},
        {"not json", "{\"type\":\"ADDED\",", false},
        {"array", "[1,2]", false},
        {"string", "\"ADDED\"", false},
        {"missing type", R"({"object":{}})", false},
        {"type not string", R"({"type":1,"object":{}})", false},
        {"unknown type", R"({"type":"PATCHED","object":{}})", false},
        {"lower case type", R"({"type":"added","object":{}})", false},
        {"missing object", R"({"type":"ADDED"})", false},
        {"object not object", R"({"type":"ADDED","object":"x"})", false},
        {"metadata not object", R"({"type":"ADDED","object":{"metadata":[]}})", false},
        {"numeric rv", R"({"type":"ADDED","object":{"metadata":{"resourceVersion":12}}})", false},
        {"error code string", R"({"type":"ERROR","object":{"code":"410"}})", false},
        {"error code float", R"({"type":"ERROR","object":{"code":410.5}})", false},
        {"error code huge", R"({"type":"ERROR","object":{"code":123456789012}})", false},
        {"two values", R"({"type":"ADDED","object":{}} {"type":"ADDED","object":{}})", false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto r = parse_watch_event(c.line);
        ASSERT_EQ(r.has_value(), c.ok);
        if (!c.ok) {
            EXPECT_EQ(r.error(), Errc::parse_error);
            continue;
        }
        EXPECT_EQ(r->type, c.type);
        EXPECT_EQ(r->resource_version, c.rv);
        EXPECT_EQ(r->code, c.code);
        EXPECT_EQ(r->reason, c.reason);
        EXPECT_TRUE(r->object.is_object());
    }
}

TEST(ParseWatchEvent, KeepsTheObject) {
    const auto r = parse_watch_event(
        R"({"type":"ADDED","object":{"metadata":{"name":"a"},"spec":{"clientID":"c"}}})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->object["spec"]["clientID"], "c");
}

// ---------------------------------------------------------------------------------------------
// A scripted ApiServerClient: every call waits until the test answers it.

struct Call {
    explicit Call(const asio::any_io_executor& ex) : wake{ex, SteadyTime::max()} {}

    void notify() { wake.cancel(); }
    // Test side.
    void answer(int status, std::string text) {
        response = kube::Response{.status = status, .body = std::move(text)};
        notify();
    }
    void fail(Errc e) {
        error = e;
        notify();
    }
    void open() {
        status = 200;
        notify();
    }
    void reject(int s, std::string text) {
        status = s;
        body = std::move(text);
        notify();
    }
    void push(std::string line) {
        status = 200;
        lines.push_back(std::move(line));
        notify();
    }
    void close() {
        status = status.value_or(200);
        closed = true;
        notify();
    }

    std::string target;
    bool is_watch = false;
    SteadyTime deadline{};
    std::optional<kube::Response> response;
    std::optional<int> status;
    std::string body;
    std::deque<std::string> lines;
    std::optional<Errc> error;
    bool closed = false;
    bool done = false;
    bool stopped_by_reader = false;
    asio::steady_timer wake;
};

class ScriptedClient final : public test::ReadOnlyApiServerClient {
public:
    asio::awaitable<Result<kube::Response>> get(std::string target, SteadyTime deadline) override {
        auto call = add(std::move(target), false, deadline, co_await asio::this_coro::executor);
        const asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
        for (;;) {
            if (cs.cancelled() != asio::cancellation_type::none) {
                call->done = true;
                co_return Errc::cancelled;
            }
            if (call->error) {
                call->done = true;
                co_return *call->error;
            }
            if (call->response) {
                call->done = true;
                co_return *call->response;
            }
            co_await call->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    asio::awaitable<Result<kube::WatchResult>> watch(std::string target, SteadyTime deadline,
                                                     kube::LineHandler on_line) override {
        auto call = add(std::move(target), true, deadline, co_await asio::this_coro::executor);
        const asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
        for (;;) {
            if (cs.cancelled() != asio::cancellation_type::none) {
                call->done = true;
                co_return Errc::cancelled;
            }
            if (call->status && *call->status != 200) {
                call->done = true;
                co_return kube::WatchResult{.status = *call->status, .body = call->body};
            }
            if (call->status) {
                // Everything queued is delivered in one go, as a read of several lines.
                while (!call->lines.empty()) {
                    const std::string line = std::move(call->lines.front());
                    call->lines.pop_front();
                    if (!on_line(line)) {
                        call->done = true;
                        call->stopped_by_reader = true;
                        co_return kube::WatchResult{.status = 200};
                    }
                }
                if (call->error) {
                    call->done = true;
                    co_return *call->error;
                }
                if (call->closed) {
                    call->done = true;
                    co_return kube::WatchResult{.status = 200};
                }
            } else if (call->error) {
                call->done = true;
                co_return *call->error;
            }
            co_await call->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    /// Calls whose path is `/<plural>` (lists or watches), oldest first.
    [[nodiscard]] std::vector<std::shared_ptr<Call>> calls(std::string_view plural,
                                                           bool watch) const {
        std::vector<std::shared_ptr<Call>> out;
        const std::string path = "/apis/aadpodidentity.k8s.io/v1/" + std::string{plural};
        for (const auto& c : calls_) {
            if (c->is_watch == watch && c->target.substr(0, c->target.find('?')) == path) {
                out.push_back(c);
            }
        }
        return out;
    }

    /// The call on `plural` still waiting for an answer, or null.
    [[nodiscard]] std::shared_ptr<Call> pending(std::string_view plural, bool watch) const {
        for (const auto& c : calls(plural, watch)) {
            if (!c->done) {
                return c;
            }
        }
        return nullptr;
    }

    [[nodiscard]] const std::vector<std::shared_ptr<Call>>& all() const { return calls_; }

private:
    std::shared_ptr<Call> add(std::string target, bool watch, SteadyTime deadline,
                              const asio::any_io_executor& ex) {
        auto call = std::make_shared<Call>(ex);
        call->target = std::move(target);
        call->is_watch = watch;
        call->deadline = deadline;
        calls_.push_back(call);
        return call;
    }

    std::vector<std::shared_ptr<Call>> calls_;
};

// ---------------------------------------------------------------------------------------------
// JSON builders

constexpr std::string_view kIdentities = "azureidentities";
constexpr std::string_view kBindings = "azureidentitybindings";
constexpr std::string_view kExceptions = "azurepodidentityexceptions";
constexpr std::string_view kAssigned = "azureassignedidentities";

json identity(const std::string& name, const std::string& client_id, const std::string& rv = "1",
              const std::string& ns = "default") {
    return {{"apiVersion", "aadpodidentity.k8s.io/v1"},
            {"kind", "AzureIdentity"},
            {"metadata", {{"name", name}, {"namespace", ns}, {"resourceVersion", rv}}},
            {"spec", {{"type", 0}, {"clientID", client_id}}}};
}

json binding(const std::string& name, const std::string& id, const std::string& selector) {
    return {{"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", "2"}}},
            {"spec", {{"azureIdentity", id}, {"selector", selector}}}};
}

json assigned(const std::string& name, const std::string& pod) {
    return {{"metadata",
             {{"name", name}, {"namespace", "default"}, {"labels", {{"nodename", "node-a"}}}}},
            {"spec", {{"pod", pod}, {"podNamespace", "default"}, {"nodename", "node-a"}}},
            {"status", {{"status", "Assigned"}}}};
}

std::string list_body(const std::string& rv, const std::vector<json>& items) {
    json out = {{"apiVersion", "aadpodidentity.k8s.io/v1"},
                {"kind", "List"},
                {"metadata", {{"resourceVersion", rv}}},
                {"items", json::array()}};
    for (const auto& i : items) {
        out["items"].push_back(i);
    }
    return out.dump();
}

std::string event(const std::string& type, const json& object) {
    return json{{"type", type}, {"object", object}}.dump();
}

std::string bookmark(const std::string& rv) {
    return event("BOOKMARK", {{"kind", "AzureIdentity"}, {"metadata", {{"resourceVersion", rv}}}});
}

std::string gone_event() {
    return event("ERROR", {{"kind", "Status"},
                           {"apiVersion", "v1"},
                           {"metadata", json::object()},
                           {"status", "Failure"},
                           {"message", "too old resource version: 5 (99)"},
                           {"reason", "Expired"},
                           {"code", 410}});
}

std::string gone_status() {
    return R"j({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (99)","reason":"Expired","code":410})j";
}

// Query parameter `name` of `target`, nullopt when absent.
std::optional<std::string> query_param(const std::string& target, const std::string& name) {
    const auto q = target.find('?');
    if (q == std::string::npos) {
        return std::nullopt;
    }
    std::size_t pos = q + 1;
    while (pos <= target.size()) {
        auto end = target.find('&', pos);
        if (end == std::string::npos) {
            end = target.size();
        }
        const std::string part = target.substr(pos, end - pos);
        const auto eq = part.find('=');
        if (part.substr(0, eq) == name) {
            return eq == std::string::npos ? std::string{} : part.substr(eq + 1);
        }
        pos = end + 1;
    }
    return std::nullopt;
}

std::vector<std::string> client_ids(const CrdSnapshot& s) {
    std::vector<std::string> out;
    for (const auto& i : s.identities) {
        out.push_back(i.meta.namespace_name + "/" + i.meta.name + "=" + i.client_id);
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Harness

ApiServerCrdSettings test_settings(OperationMode mode = OperationMode::standard) {
    return {.node_name = "node-a",
            .mode = mode,
            .watch_timeout = 300s,
            .request_deadline = 10s,
            .backoff_base = 800ms,
            .backoff_cap = 30s,
            .random_seed = 42};
}

class ApiServerCrdSourceTest : public ::testing::Test {
protected:
    ~ApiServerCrdSourceTest() override {
        if (source_) {
            signal_.emit(asio::cancellation_type::terminal);
            ioc_.poll();
            EXPECT_TRUE(finished_) << "run() did not return on cancellation";
        }
    }

    void start(ApiServerCrdSettings settings = test_settings()) {
        source_ = std::make_unique<ApiServerCrdSource>(client_, clock_, std::move(settings));
        asio::co_spawn(
            ioc_, source_->run([this](CrdSnapshotPtr s) { published_.push_back(std::move(s)); }),
            asio::bind_cancellation_slot(signal_.slot(), [this](const std::exception_ptr& e) {
                finished_ = true;
                if (e) {
                    std::rethrow_exception(e);
                }
            }));
        ioc_.poll();
    }

    void poll() { ioc_.poll(); }

    std::shared_ptr<Call> pending(std::string_view plural, bool watch) {
        auto c = client_.pending(plural, watch);
        EXPECT_NE(c, nullptr) << "no pending " << (watch ? "watch" : "list") << " of " << plural;
        return c;
    }

    // Answers the pending lists of every resource (identities get `ids`).
    void list_all(const std::vector<json>& ids = {}, bool with_assigned = true) {
        pending(kIdentities, false)->answer(200, list_body("10", ids));
        pending(kBindings, false)->answer(200, list_body("20", {binding("b", "id-a", "sel")}));
        pending(kExceptions, false)->answer(200, list_body("30", {}));
        if (with_assigned) {
            pending(kAssigned, false)->answer(200, list_body("40", {assigned("x", "pod-x")}));
        }
        poll();
    }

    [[nodiscard]] Millis next_wait() const {
        if (clock_.next_deadline() == SteadyTime::max()) {
            return Millis::max();
        }
        return std::chrono::duration_cast<Millis>(clock_.next_deadline() - clock_.steady_now());
    }

    [[nodiscard]] const CrdSnapshot& latest() const { return *published_.back(); }

    asio::io_context ioc_;
    test::ManualClock clock_;
    ScriptedClient client_;
    std::unique_ptr<ApiServerCrdSource> source_;
    std::vector<CrdSnapshotPtr> published_;
    asio::cancellation_signal signal_;
    bool finished_ = false;
};

TEST_F(ApiServerCrdSourceTest, StandardModeListsEveryKindAndAssignedByNodeLabel) {
    start();
    ASSERT_EQ(client_.all().size(), 4U);
    EXPECT_EQ(pending(kIdentities, false)->target,
              "/apis/aadpodidentity.k8s.io/v1/azureidentities?resourceVersion=0");
    EXPECT_EQ(pending(kBindings, false)->target,
              "/apis/aadpodidentity.k8s.io/v1/azureidentitybindings?resourceVersion=0");
    EXPECT_EQ(pending(kExceptions, false)->target,
              "/apis/aadpodidentity.k8s.io/v1/azurepodidentityexceptions?resourceVersion=0");
    EXPECT_EQ(pending(kAssigned, false)->target,
              "/apis/aadpodidentity.k8s.io/v1/"
              "azureassignedidentities?resourceVersion=0&labelSelector=nodename%3Dnode-a");
    EXPECT_EQ(pending(kIdentities, false)->deadline, clock_.steady_now() + 10s);
}

TEST_F(ApiServerCrdSourceTest, ManagedModeDoesNotListAssignedIdentities) {
    start(test_settings(OperationMode::managed));
    ASSERT_EQ(client_.all().size(), 3U);
    EXPECT_TRUE(client_.calls(kAssigned, false).empty());
    list_all({identity("a", "c-a")}, /*with_assigned=*/false);
    ASSERT_EQ(published_.size(), 1U);
    EXPECT_TRUE(source_->stats().ready);
    EXPECT_TRUE(latest().assigned.empty());
    EXPECT_TRUE(client_.calls(kAssigned, true).empty());
}

TEST_F(ApiServerCrdSourceTest, ReadyOnlyAfterEveryInitialList) {
    start();
    pending(kIdentities, false)
        ->answer(200, list_body("10", {identity("b", "c-b"), identity("a", "c-a")}));
    pending(kBindings, false)->answer(200, list_body("20", {binding("b", "a", "sel")}));
    pending(kExceptions, false)->answer(200, list_body("30", {}));
    poll();
    EXPECT_TRUE(published_.empty());
    EXPECT_FALSE(source_->stats().ready);
    EXPECT_TRUE(source_->stats().of(CrdResource::identities).synced);
    // Events of a resource already listed are held until everything is synced.
    pending(kIdentities, true)->push(event("ADDED", identity("c", "c-c", "11")));
    poll();
    EXPECT_TRUE(published_.empty());

    pending(kAssigned, false)->answer(200, list_body("40", {assigned("x", "pod-x")}));
    poll();
    ASSERT_EQ(published_.size(), 1U);
    EXPECT_TRUE(source_->stats().ready);
    EXPECT_EQ(client_ids(latest()),
              (std::vector<std::string>{"default/a=c-a", "default/b=c-b", "default/c=c-c"}));
    ASSERT_EQ(latest().bindings.size(), 1U);
    ASSERT_EQ(latest().assigned.size(), 1U);
    EXPECT_EQ(latest().assigned[0].pod, "pod-x");
    EXPECT_EQ(source_->stats().publishes, 1U);
}

TEST_F(ApiServerCrdSourceTest, ListFailuresRetryWithBackoffBeforeReadiness) {
    start();
    pending(kIdentities, false)->fail(Errc::io_error);
    poll();
    EXPECT_EQ(client_.calls(kIdentities, false).size(), 1U);
    const Millis first = next_wait();
    EXPECT_GE(first, 400ms);
    EXPECT_LE(first, 800ms);
    clock_.advance(first);
    poll();
    pending(kIdentities, false)->answer(500, R"({"kind":"Status","code":500})");
    poll();
    const Millis second = next_wait();
    EXPECT_GE(second, 800ms);
    EXPECT_LE(second, 1600ms);
    clock_.advance(second);
    poll();
    ASSERT_EQ(client_.calls(kIdentities, false).size(), 3U);
    pending(kIdentities, false)->answer(200, "not json");
    poll();
    clock_.advance(next_wait());
    poll();
    list_all({identity("a", "c-a")});
    ASSERT_EQ(published_.size(), 1U);
    EXPECT_EQ(source_->stats().of(CrdResource::identities).errors, 3U);
    EXPECT_EQ(source_->stats().of(CrdResource::identities).lists, 1U);
    EXPECT_EQ(source_->stats().of(CrdResource::identities).relists, 0U);
}

TEST_F(ApiServerCrdSourceTest, WatchesFromTheListResourceVersionWithBookmarks) {
    start();
    list_all();
    const auto w = pending(kIdentities, true);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->target.rfind("/apis/aadpodidentity.k8s.io/v1/azureidentities?", 0), 0U);
    EXPECT_EQ(query_param(w->target, "watch"), "1");
    EXPECT_EQ(query_param(w->target, "allowWatchBookmarks"), "true");
    EXPECT_EQ(query_param(w->target, "resourceVersion"), "10");
    EXPECT_EQ(query_param(w->target, "labelSelector"), std::nullopt);
    const int timeout = std::stoi(query_param(w->target, "timeoutSeconds").value_or("0"));
    EXPECT_GE(timeout, 300);
    EXPECT_LT(timeout, 600);
    EXPECT_EQ(w->deadline, clock_.steady_now() + std::chrono::seconds{timeout} + 10s);

    const auto a = pending(kAssigned, true);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(query_param(a->target, "resourceVersion"), "40");
    EXPECT_EQ(query_param(a->target, "labelSelector"), "nodename%3Dnode-a");
}

TEST_F(ApiServerCrdSourceTest, EventsAreAppliedAndBurstsPublishedOnce) {
    start();
    list_all({identity("a", "c-a")});
    ASSERT_EQ(published_.size(), 1U);
    const auto w = pending(kIdentities, true);

    w->push(event("ADDED", identity("b", "c-b", "11")));
    poll();
    ASSERT_EQ(published_.size(), 2U);
    EXPECT_EQ(client_ids(latest()), (std::vector<std::string>{"default/a=c-a", "default/b=c-b"}));

    // Three events read together: one publish with all of them applied.
    w->push(event("MODIFIED", identity("a", "c-a2", "12")));
    w->push(event("DELETED", identity("b", "c-b", "13")));
    w->push(event("ADDED", identity("z", "c-z", "14", "kube-system")));
    poll();
    ASSERT_EQ(published_.size(), 3U);
    EXPECT_EQ(client_ids(latest()),
              (std::vector<std::string>{"default/a=c-a2", "kube-system/z=c-z"}));
    // The previous snapshot is untouched (readers keep what they loaded).
    EXPECT_EQ(client_ids(*published_[1]),
              (std::vector<std::string>{"default/a=c-a", "default/b=c-b"}));

    const auto stats = source_->stats().of(CrdResource::identities);
    EXPECT_EQ(stats.events, 4U);
    EXPECT_EQ(stats.objects, 2U);
    EXPECT_EQ(stats.resource_version, "14");

    // A bookmark changes nothing that readers see.
    w->push(bookmark("15"));
    poll();
    EXPECT_EQ(published_.size(), 3U);
    EXPECT_EQ(source_->stats().of(CrdResource::identities).bookmarks, 1U);
}

TEST_F(ApiServerCrdSourceTest, BookmarkResourceVersionIsUsedOnReWatch) {
    start();
    list_all();
    const auto w = pending(kIdentities, true);
    w->push(event("ADDED", identity("b", "c-b", "11")));
    w->push(bookmark("bm-77"));
    poll();
    clock_.advance(301s);
    w->close();  // timeoutSeconds reached: a clean end
    poll();
    EXPECT_EQ(client_.calls(kIdentities, false).size(), 1U);  // no relist
    const auto again = pending(kIdentities, true);
    ASSERT_NE(again, nullptr);
    EXPECT_NE(again, w);
    EXPECT_EQ(query_param(again->target, "resourceVersion"), "bm-77");
    EXPECT_EQ(source_->stats().of(CrdResource::identities).watch_restarts, 1U);
    EXPECT_EQ(clock_.waiters(), 0U);  // no backoff after a normal end
}

TEST_F(ApiServerCrdSourceTest, WatchThatEndsAtOnceWithoutEventsBacksOff) {
    start();
    list_all();
    pending(kIdentities, true)->close();
    poll();
    EXPECT_EQ(client_.calls(kIdentities, true).size(), 1U);
    const Millis wait = next_wait();
    EXPECT_GE(wait, 400ms);
    EXPECT_LE(wait, 800ms);
    clock_.advance(wait);
    poll();
    EXPECT_EQ(client_.calls(kIdentities, true).size(), 2U);
    EXPECT_EQ(client_.calls(kIdentities, false).size(), 1U);
}

void expect_relist_without_gap(ScriptedClient& client, std::vector<CrdSnapshotPtr>& published,
                               const std::function<void()>& poll) {
    // The old objects stay published until the new list answers.
    const auto before = published.size();
    const auto list = client.pending(kIdentities, false);
    ASSERT_NE(list, nullptr);
    EXPECT_EQ(query_param(list->target, "resourceVersion"), "12");
    EXPECT_EQ(query_param(list->target, "resourceVersionMatch"), "NotOlderThan");
    EXPECT_EQ(published.size(), before);
    EXPECT_EQ(client_ids(*published.back()),
              (std::vector<std::string>{"default/a=c-a", "default/b=c-b"}));
    // The new list replaces the resource wholesale: `a` is gone, `c` is new.
    list->answer(200, list_body("50", {identity("c", "c-c"), identity("b", "c-b2")}));
    poll();
    ASSERT_EQ(published.size(), before + 1);
    EXPECT_EQ(client_ids(*published.back()),
              (std::vector<std::string>{"default/b=c-b2", "default/c=c-c"}));
    // Other resources were not touched.
    EXPECT_EQ(published.back()->bindings.size(), 1U);
    EXPECT_EQ(published.back()->assigned.size(), 1U);
    const auto w = client.pending(kIdentities, true);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(query_param(w->target, "resourceVersion"), "50");
}

TEST_F(ApiServerCrdSourceTest, GoneAsHttpStatusRelistsWithoutGap) {
    start();
    list_all({identity("a", "c-a"), identity("b", "c-b")});
    auto w = pending(kIdentities, true);
    w->push(bookmark("12"));
    poll();
    clock_.advance(400s);
    w->close();
    poll();
    pending(kIdentities, true)->reject(410, gone_status());
    poll();
    expect_relist_without_gap(client_, published_, [this] { poll(); });
    const auto stats = source_->stats().of(CrdResource::identities);
    EXPECT_EQ(stats.gone, 1U);
    EXPECT_EQ(stats.relists, 1U);
    EXPECT_EQ(stats.lists, 2U);
    EXPECT_EQ(stats.errors, 0U);
    EXPECT_EQ(clock_.waiters(), 0U);  // the first 410 relists at once
}

TEST_F(ApiServerCrdSourceTest, GoneAsErrorEventRelistsWithoutGap) {
    start();
    list_all({identity("a", "c-a"), identity("b", "c-b")});
    const auto w = pending(kIdentities, true);
    w->push(bookmark("12"));
    w->push(gone_event());
    w->push(event("ADDED", identity("late", "c-late", "13")));  // after the ERROR: not read
    poll();
    EXPECT_TRUE(w->stopped_by_reader);
    expect_relist_without_gap(client_, published_, [this] { poll(); });
    EXPECT_EQ(source_->stats().of(CrdResource::identities).gone, 1U);
}

TEST_F(ApiServerCrdSourceTest, RepeatedGoneWithoutProgressBacksOff) {
    start();
    list_all();
    pending(kIdentities, true)->reject(410, gone_status());
    poll();
    pending(kIdentities, false)->answer(200, list_body("60", {}));
    poll();
    pending(kIdentities, true)->reject(410, gone_status());
    poll();
    EXPECT_EQ(client_.pending(kIdentities, false), nullptr);
    EXPECT_NE(next_wait(), Millis::max());
    clock_.advance(next_wait());
    poll();
    EXPECT_NE(client_.pending(kIdentities, false), nullptr);
}

TEST_F(ApiServerCrdSourceTest, ListAnsweringGoneFallsBackToLatest) {
    start();
    list_all();
    pending(kIdentities, true)->push(gone_event());
    poll();
    pending(kIdentities, false)->answer(410, gone_status());
    poll();
    clock_.advance(next_wait());
    poll();
    const auto list = pending(kIdentities, false);
    ASSERT_NE(list, nullptr);
    EXPECT_EQ(list->target, "/apis/aadpodidentity.k8s.io/v1/azureidentities");
}

TEST_F(ApiServerCrdSourceTest, DroppedStreamResumesFromLastVersionWithGrowingBackoff) {
    start();
    list_all();
    auto w = pending(kIdentities, true);
    w->push(event("ADDED", identity("b", "c-b", "rv-b")));
    w->fail(Errc::io_error);  // cut mid-stream
    poll();
    EXPECT_EQ(client_.pending(kIdentities, true), nullptr);
    const Millis first = next_wait();
    EXPECT_GE(first, 400ms);
    EXPECT_LE(first, 800ms);
    clock_.advance(first - 1ms);
    poll();
    EXPECT_EQ(client_.pending(kIdentities, true), nullptr);  // not before the backoff ends
    clock_.advance(1ms);
    poll();
    w = pending(kIdentities, true);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(query_param(w->target, "resourceVersion"), "rv-b");
    EXPECT_EQ(client_.calls(kIdentities, false).size(), 1U);  // resumed, not relisted

    // Failures without progress double the delay.
    w->fail(Errc::timeout);
    poll();
    const Millis second = next_wait();
    EXPECT_GE(second, 800ms);
    EXPECT_LE(second, 1600ms);
    clock_.advance(second);
    poll();
    pending(kIdentities, true)->reject(503, R"({"kind":"Status","reason":"ServiceUnavailable"})");
    poll();
    const Millis third = next_wait();
    EXPECT_GE(third, 1600ms);
    EXPECT_LE(third, 3200ms);
    clock_.advance(third);
    poll();
    // A stream that delivered an event resets the backoff.
    w = pending(kIdentities, true);
    EXPECT_EQ(query_param(w->target, "resourceVersion"), "rv-b");
    w->push(event("ADDED", identity("c", "c-c", "rv-c")));
    w->fail(Errc::io_error);
    poll();
    const Millis reset = next_wait();
    EXPECT_GE(reset, 400ms);
    EXPECT_LE(reset, 800ms);
    EXPECT_EQ(client_ids(latest()), (std::vector<std::string>{"default/b=c-b", "default/c=c-c"}));
    EXPECT_EQ(source_->stats().of(CrdResource::identities).errors, 4U);
}

TEST_F(ApiServerCrdSourceTest, BackoffIsCapped) {
    auto settings = test_settings();
    settings.backoff_cap = 3s;
    start(settings);
    for (int i = 0; i < 8; ++i) {
        pending(kIdentities, false)->fail(Errc::io_error);
        poll();
        const Millis wait = next_wait();
        EXPECT_LE(wait, 3s);
        if (i >= 3) {
            EXPECT_GE(wait, 1500ms);
        }
        clock_.advance(wait);
        poll();
    }
}

TEST_F(ApiServerCrdSourceTest, SameSeedSameDelays) {
    auto delays = [](std::uint64_t seed) {
        asio::io_context ioc;
        test::ManualClock clock;
        ScriptedClient client;
        auto settings = test_settings();
        settings.random_seed = seed;
        ApiServerCrdSource source{client, clock, settings};
        asio::cancellation_signal signal;
        asio::co_spawn(ioc, source.run([](const CrdSnapshotPtr&) {}),
                       asio::bind_cancellation_slot(signal.slot(), asio::detached));
        ioc.poll();
        std::vector<SteadyTime::duration> out;
        for (int i = 0; i < 4; ++i) {
            client.pending(kIdentities, false)->fail(Errc::io_error);
            ioc.poll();
            out.push_back(clock.next_deadline() - clock.steady_now());
            clock.advance(out.back());
            ioc.poll();
        }
        signal.emit(asio::cancellation_type::terminal);
        ioc.poll();
        return out;
    };
    EXPECT_EQ(delays(7), delays(7));
    EXPECT_NE(delays(7), delays(8));
}

TEST_F(ApiServerCrdSourceTest, ErrorEventOtherThanGoneReWatchesAfterBackoff) {
    start();
    list_all();
    pending(kIdentities, true)
        ->push(event("ERROR", {{"kind", "Status"}, {"code", 500}, {"reason", "InternalError"}}));
    poll();
    EXPECT_EQ(client_.pending(kIdentities, true), nullptr);
    clock_.advance(next_wait());
    poll();
    const auto w = pending(kIdentities, true);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(query_param(w->target, "resourceVersion"), "10");
    EXPECT_EQ(client_.calls(kIdentities, false).size(), 1U);
    EXPECT_EQ(source_->stats().of(CrdResource::identities).errors, 1U);
}

TEST_F(ApiServerCrdSourceTest, MalformedLineEndsTheStreamAndResumes) {
    start();
    list_all();
    const auto w = pending(kIdentities, true);
    w->push(event("ADDED", identity("b", "c-b", "11")));
    w->push("{\"type\":\"ADDED\",\"obj");
    w->push(event("ADDED", identity("c", "c-c", "12")));
    poll();
    EXPECT_TRUE(w->stopped_by_reader);
    EXPECT_EQ(client_ids(latest()), (std::vector<std::string>{"default/b=c-b"}));
    clock_.advance(next_wait());
    poll();
    EXPECT_EQ(query_param(pending(kIdentities, true)->target, "resourceVersion"), "11");
}

TEST_F(ApiServerCrdSourceTest, ObjectThatNoLongerParsesIsDropped) {
    start();
    list_all({identity("a", "c-a"), identity("b", "c-b")});
    json broken = identity("a", "c-a", "11");
    broken["spec"]["type"] = "zero";
    pending(kIdentities, true)->push(event("MODIFIED", broken));
    poll();
    EXPECT_EQ(client_ids(latest()), (std::vector<std::string>{"default/b=c-b"}));
    EXPECT_EQ(source_->stats().of(CrdResource::identities).errors, 1U);
    EXPECT_EQ(source_->stats().of(CrdResource::identities).resource_version, "11");
    EXPECT_NE(client_.pending(kIdentities, true), nullptr);  // the stream goes on
}

TEST_F(ApiServerCrdSourceTest, ListSkipsObjectsThatDoNotParseAndAcceptsNullItems) {
    start();
    json broken = identity("bad", "c");
    broken["spec"]["clientID"] = 5;
    pending(kIdentities, false)->answer(200, list_body("10", {identity("a", "c-a"), broken}));
    pending(kBindings, false)->answer(200, R"({"metadata":{"resourceVersion":"3"},"items":null})");
    pending(kExceptions, false)->answer(200, list_body("30", {}));
    pending(kAssigned, false)->answer(200, list_body("40", {}));
    poll();
    ASSERT_EQ(published_.size(), 1U);
    EXPECT_EQ(client_ids(latest()), (std::vector<std::string>{"default/a=c-a"}));
    EXPECT_TRUE(latest().bindings.empty());
    EXPECT_EQ(source_->stats().of(CrdResource::identities).errors, 1U);
}

TEST_F(ApiServerCrdSourceTest, ListWithoutResourceVersionIsAFailure) {
    start();
    pending(kIdentities, false)->answer(200, R"({"items":[]})");
    poll();
    EXPECT_EQ(source_->stats().of(CrdResource::identities).errors, 1U);
    EXPECT_FALSE(source_->stats().of(CrdResource::identities).synced);
    EXPECT_EQ(client_.pending(kIdentities, true), nullptr);
}

TEST_F(ApiServerCrdSourceTest, CancellationStopsEveryRequest) {
    start();
    list_all();
    pending(kIdentities, true)->fail(Errc::io_error);
    poll();  // identities now waits in backoff, the others in their watches
    signal_.emit(asio::cancellation_type::terminal);
    poll();
    EXPECT_TRUE(finished_);
    for (const auto& c : client_.all()) {
        EXPECT_TRUE(c->done) << c->target;
    }
    source_.reset();
}

// ---------------------------------------------------------------------------------------------
// Staleness (--crd-max-staleness)

TEST(TokensAllowed, ZeroNeverDeniesOtherwiseAgeAtMostMax) {
    struct Case {
        Millis age;
        Millis max;
        bool allowed;
    };
    const Case cases[] =
        {
            {0ms, 0ms, true},        {Millis{24h}, 0ms, true}, {0ms, 60s, true},
            {60s, 60s, true},        {60001ms, 60s, false},    {Millis{24h}, 60s, false},
            {Millis{-5}, 60s, true},  // a clock that went back: not stale
        };
    for (const Case& c : cases) {
        EXPECT_EQ(tokens_allowed(c.age, c.max), c.allowed) << c.age.count() << " " << c.max.count();
    }
}

// The snapshot is as old as the least recently confirmed resource: a LIST, an event, a
// BOOKMARK or a stream the server ended confirms one; a broken watch confirms nothing.
TEST_F(ApiServerCrdSourceTest, SnapshotAgeIsTheTimeSinceTheWatchLastConfirmedEveryResource) {
    start();
    clock_.advance(5s);
    EXPECT_EQ(source_->snapshot_age(), 5s);  // nothing listed yet: since the source was made
    list_all({identity("a", "c-a")});
    EXPECT_EQ(source_->snapshot_age(), 0ms);

    clock_.advance(40s);
    EXPECT_EQ(source_->snapshot_age(), 40s);
    // Only identities confirmed: the others are still 40 s old.
    pending(kIdentities, true)->push(bookmark("11"));
    poll();
    EXPECT_EQ(source_->snapshot_age(), 40s);
    EXPECT_EQ(source_->stats().of(CrdResource::identities).confirmed_at, clock_.steady_now());
    pending(kBindings, true)->push(event("MODIFIED", binding("b", "id-a", "other")));
    pending(kExceptions, true)->push(bookmark("31"));
    poll();
    EXPECT_EQ(source_->snapshot_age(), 40s);  // assignments not confirmed since the list
    clock_.advance(260s);
    pending(kAssigned, true)->close();  // the server ended the watch: confirmed
    poll();
    EXPECT_EQ(source_->snapshot_age(), 260s);
    pending(kIdentities, true)->push(bookmark("12"));
    pending(kBindings, true)->push(bookmark("22"));
    pending(kExceptions, true)->push(bookmark("32"));
    poll();
    EXPECT_EQ(source_->snapshot_age(), 0ms);

    // A broken watch: the age grows through the backoff and retries until a LIST succeeds.
    pending(kIdentities, true)->fail(Errc::io_error);
    poll();
    const Millis backoff = next_wait();
    clock_.advance(backoff);
    poll();
    pending(kIdentities, true)->reject(410, gone_status());
    poll();
    clock_.advance(30s);
    EXPECT_EQ(source_->snapshot_age(), backoff + 30s);
    EXPECT_FALSE(tokens_allowed(source_->snapshot_age(), 20s));
    pending(kIdentities, false)->fail(Errc::io_error);
    poll();
    clock_.advance(next_wait());
    poll();
    const Millis before_list = source_->snapshot_age();
    EXPECT_GT(before_list, 30s);
    pending(kIdentities, false)->answer(200, list_body("50", {identity("a", "c-a")}));
    poll();
    // Identities are confirmed again; the others still count from their last bookmark.
    EXPECT_EQ(source_->stats().of(CrdResource::identities).confirmed_at, clock_.steady_now());
    EXPECT_EQ(source_->snapshot_age(), before_list);
    pending(kBindings, true)->push(bookmark("23"));
    pending(kExceptions, true)->push(bookmark("33"));
    pending(kAssigned, true)->push(bookmark("43"));
    poll();
    EXPECT_EQ(source_->snapshot_age(), 0ms);
    EXPECT_TRUE(tokens_allowed(source_->snapshot_age(), 20s));
}

TEST_F(ApiServerCrdSourceTest, ManagedModeAgeIgnoresTheAssignmentsItDoesNotWatch) {
    start(test_settings(OperationMode::managed));
    list_all({}, /*with_assigned=*/false);
    clock_.advance(90s);
    pending(kIdentities, true)->push(bookmark("11"));
    pending(kBindings, true)->push(bookmark("21"));
    pending(kExceptions, true)->push(bookmark("31"));
    poll();
    EXPECT_EQ(source_->snapshot_age(), 0ms);
}

}  // namespace
}  // namespace nmid
