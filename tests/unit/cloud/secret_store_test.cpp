#include "nmid/cloud/secret_store.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nmid/kube/client.hpp"
#include "support/fake_http_server.hpp"
#include "support/manual_clock.hpp"
#include "support/read_only_api_client.hpp"

namespace nmid::cloud {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr const char* kTarget = "/api/v1/namespaces/default/secrets/kv-sp";
// {"clientSecret":"super-secret-value"} as the API server returns it.
constexpr const char* kSecretBody =
    R"({"kind":"Secret","apiVersion":"v1","metadata":{"name":"kv-sp","namespace":"default"},)"
    R"("data":{"clientSecret":"c3VwZXItc2VjcmV0LXZhbHVl"},"type":"Opaque"})";

/// In-test API server: answers get() from a per-target script (default 404), optionally holding
/// every answer until release().
class FakeApiServer final : public test::ReadOnlyApiServerClient {
public:
    asio::awaitable<Result<kube::Response>> get(std::string target, SteadyTime deadline) override {
        targets.push_back(target);
        deadlines.push_back(deadline);
        if (held) {
            asio::steady_timer gate{co_await asio::this_coro::executor, SteadyTime::max()};
            gates_.push_back(&gate);
            co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
            std::erase(gates_, &gate);
        }
        const auto it = answers.find(target);
        if (it == answers.end()) {
            co_return kube::Response{.status = 404, .body = "{}", .retry_after = ""};
        }
        co_return it->second;
    }
    asio::awaitable<Result<kube::WatchResult>> watch(std::string, SteadyTime,
                                                     kube::LineHandler) override {
        co_return Errc::io_error;  // secrets are never watched
    }
    void release() {
        held = false;
        for (auto* gate : gates_) {
            gate->cancel();
        }
    }

    std::map<std::string, Result<kube::Response>> answers;
    bool held = false;
    std::vector<std::string> targets;
    std::vector<SteadyTime> deadlines;

private:
    std::vector<asio::steady_timer*> gates_;
};

Result<kube::Response> status(int code, std::string body = "{}") {
    return kube::Response{.status = code, .body = std::move(body), .retry_after = ""};
}

class SecretStoreTest : public ::testing::Test {
protected:
    SecretStoreTest() { api_.answers[kTarget] = status(200, kSecretBody); }

    void make_store(SecretStoreSettings settings = {}) {
        store_ =
            std::make_unique<ApiServerSecretStore>(ioc_.get_executor(), api_, clock_, settings);
    }

    using Outcome = std::shared_ptr<std::optional<SecretResult>>;

    Outcome start(SecretRef ref, asio::cancellation_slot slot = {}) {
        auto out = std::make_shared<std::optional<SecretResult>>();
        asio::co_spawn(
            ioc_,
            [this, ref = std::move(ref)]() -> asio::awaitable<SecretResult> {
                co_return co_await store_->get(ref, clock_.steady_now() + 5s);
            },
            asio::bind_cancellation_slot(slot, [out](const std::exception_ptr& e, SecretResult r) {
                if (e) {
                    std::rethrow_exception(e);
                }
                out->emplace(std::move(r));
            }));
        return out;
    }

    SecretResult get(SecretRef ref = {"default", "kv-sp"}) {
        auto out = start(std::move(ref));
        EXPECT_TRUE(test::run_until(ioc_, [&] { return out->has_value(); }));
        if (!out->has_value()) {
            return SecretError{};
        }
        return std::move(**out);
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    FakeApiServer api_;
    std::unique_ptr<ApiServerSecretStore> store_;
};

TEST_F(SecretStoreTest, ReadsAndDecodesTheSecret) {
    make_store();
    const auto r = get();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ASSERT_EQ(api_.targets, std::vector<std::string>{kTarget});
    EXPECT_EQ(api_.deadlines[0], clock_.steady_now() + 5s);
    EXPECT_EQ((*r)->data.size(), 1U);
    EXPECT_EQ((*r)->data.at("clientSecret"), "super-secret-value");
}

TEST_F(SecretStoreTest, ReusesAReadUntilTheTtlThenReadsAgain) {
    make_store({.ttl = 60s, .failure_ttl = 5s, .stale_if_error = 300s, .max_entries = 16});
    const auto first = get();
    ASSERT_TRUE(first.has_value());
    clock_.advance(59s);
    const auto second = get();
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(*first, *second);  // the same immutable object
    EXPECT_EQ(store_->api_reads(), 1U);
    clock_.advance(1s);
    ASSERT_TRUE(get().has_value());
    EXPECT_EQ(store_->api_reads(), 2U);
}

TEST_F(SecretStoreTest, ConcurrentGetsOfOneSecretShareOneRead) {
    make_store();
    api_.held = true;
    auto a = start({"default", "kv-sp"});
    auto b = start({"default", "kv-sp"});
    auto c = start({"default", "kv-sp"});
    auto other = start({"default", "other"});
    ioc_.poll();
    EXPECT_EQ(api_.targets.size(), 2U);  // one per Secret
    EXPECT_FALSE(a->has_value());
    api_.release();
    ASSERT_TRUE(test::run_until(ioc_, [&] {
        return a->has_value() && b->has_value() && c->has_value() && other->has_value();
    }));
    EXPECT_EQ(store_->api_reads(), 2U);
    ASSERT_TRUE(a->value().has_value());
    EXPECT_EQ(*a->value(), *b->value());
    EXPECT_EQ(*a->value(), *c->value());
    EXPECT_EQ(other->value().error().code, SecretErrc::not_found);
}

TEST_F(SecretStoreTest, ACancelledCallerLeavesTheSharedReadRunning) {
    make_store();
    api_.held = true;
    asio::cancellation_signal cancel;
    auto first = start({"default", "kv-sp"}, cancel.slot());
    auto second = start({"default", "kv-sp"});
    ioc_.poll();
    cancel.emit(asio::cancellation_type::terminal);
    ASSERT_TRUE(test::run_until(ioc_, [&] { return first->has_value(); }));
    EXPECT_EQ(first->value().error().code, SecretErrc::cancelled);
    EXPECT_FALSE(second->has_value());
    api_.release();
    ASSERT_TRUE(test::run_until(ioc_, [&] { return second->has_value(); }));
    EXPECT_TRUE(second->value().has_value());
    EXPECT_EQ(store_->api_reads(), 1U);
}

TEST_F(SecretStoreTest, MapsApiServerAnswersToTypedErrors) {
    struct Case {
        Result<kube::Response> answer;
        SecretErrc code;
        int status;
    };
    const Case cases[] = {
        {status(404, R"({"kind":"Status","code":404})"), SecretErrc::not_found, 404},
        {status(403, R"({"kind":"Status","code":403})"), SecretErrc::forbidden, 403},
        {status(401), SecretErrc::unavailable, 401},
        {status(429), SecretErrc::unavailable, 429},
        {status(500), SecretErrc::unavailable, 500},
        {status(200, "not json"), SecretErrc::bad_payload, 200},
        {status(200, R"({"kind":"ConfigMap","data":{}})"), SecretErrc::bad_payload, 200},
        {status(200, R"({"kind":"Secret","data":{"k":"%%%"}})"), SecretErrc::bad_payload, 200},
        {status(200, R"({"kind":"Secret","data":{"k":1}})"), SecretErrc::bad_payload, 200},
        {status(200, R"({"kind":"Secret","data":[]})"), SecretErrc::bad_payload, 200},
        {Result<kube::Response>{Errc::io_error}, SecretErrc::unavailable, 0},
        {Result<kube::Response>{Errc::timeout}, SecretErrc::timeout, 0},
    };
    for (const auto& c : cases) {
        api_.answers[kTarget] = c.answer;
        make_store();
        const auto r = get();
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().code, c.code) << to_string(c.code);
        EXPECT_EQ(r.error().status, c.status) << to_string(c.code);
        EXPECT_NE(r.error().message.find("default/kv-sp"), std::string::npos) << r.error().message;
    }
}

TEST_F(SecretStoreTest, ErrorMessagesNeverCarryValues) {
    api_.answers[kTarget] =
        status(200, R"({"kind":"Secret","data":{"clientSecret":"c3VwZXI=","bad":"c3VwZXI"}})");
    make_store();
    const auto r = get();
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("bad"), std::string::npos);
    EXPECT_EQ(r.error().message.find("c3VwZXI"), std::string::npos);
}

TEST_F(SecretStoreTest, EmptySecretAndAbsentDataAreEmpty) {
    api_.answers[kTarget] = status(200, R"({"kind":"Secret","metadata":{"name":"kv-sp"}})");
    make_store();
    const auto r = get();
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE((*r)->data.empty());
}

TEST_F(SecretStoreTest, RemembersAFailureBriefly) {
    api_.answers[kTarget] = status(404);
    make_store({.ttl = 60s, .failure_ttl = 5s, .stale_if_error = 300s, .max_entries = 16});
    EXPECT_EQ(get().error().code, SecretErrc::not_found);
    clock_.advance(4s);
    api_.answers[kTarget] = status(200, kSecretBody);
    EXPECT_EQ(get().error().code, SecretErrc::not_found);
    EXPECT_EQ(store_->api_reads(), 1U);
    clock_.advance(1s);
    EXPECT_TRUE(get().has_value());
    EXPECT_EQ(store_->api_reads(), 2U);
}

TEST_F(SecretStoreTest, ServesTheLastValueWhileTheApiServerIsDown) {
    make_store({.ttl = 60s, .failure_ttl = 5s, .stale_if_error = 300s, .max_entries = 16});
    const auto good = get();
    ASSERT_TRUE(good.has_value());
    api_.answers[kTarget] = Result<kube::Response>{Errc::io_error};
    clock_.advance(61s);
    const auto stale = get();
    ASSERT_TRUE(stale.has_value());
    EXPECT_EQ(*stale, *good);
    // Past ttl + stale_if_error the failure shows.
    clock_.advance(300s);
    EXPECT_EQ(get().error().code, SecretErrc::unavailable);
}

TEST_F(SecretStoreTest, ADeletedSecretIsNotServedStale) {
    make_store();
    ASSERT_TRUE(get().has_value());
    api_.answers[kTarget] = status(404);
    clock_.advance(61s);
    EXPECT_EQ(get().error().code, SecretErrc::not_found);
    api_.answers[kTarget] = Result<kube::Response>{Errc::io_error};
    clock_.advance(6s);
    EXPECT_EQ(get().error().code, SecretErrc::unavailable);
}

TEST_F(SecretStoreTest, InvalidateForcesTheNextRead) {
    make_store();
    ASSERT_TRUE(get().has_value());
    store_->invalidate({"default", "kv-sp"});
    ioc_.poll();
    api_.answers[kTarget] =
        status(200, R"({"kind":"Secret","data":{"clientSecret":"cm90YXRlZA=="}})");
    const auto r = get();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)->data.at("clientSecret"), "rotated");
    EXPECT_EQ(store_->api_reads(), 2U);
}

TEST_F(SecretStoreTest, EncodesTheTargetAndRejectsEmptyReferences) {
    make_store();
    EXPECT_EQ(get({"", "x"}).error().code, SecretErrc::invalid_reference);
    EXPECT_EQ(get({"ns", ""}).error().code, SecretErrc::invalid_reference);
    EXPECT_TRUE(api_.targets.empty());
    (void)get({"my-ns", "a b/c"});
    ASSERT_EQ(api_.targets.size(), 1U);
    EXPECT_EQ(api_.targets[0], "/api/v1/namespaces/my-ns/secrets/a%20b%2Fc");
}

TEST_F(SecretStoreTest, KeepsAtMostMaxEntries) {
    make_store({.ttl = 60s, .failure_ttl = 5s, .stale_if_error = 300s, .max_entries = 2});
    ASSERT_TRUE(get().has_value());  // kv-sp
    clock_.advance(1s);
    (void)get({"default", "b"});  // 404, remembered
    clock_.advance(1s);
    (void)get({"default", "c"});  // evicts kv-sp (least recently read)
    EXPECT_EQ(store_->api_reads(), 3U);
    ASSERT_TRUE(get().has_value());
    EXPECT_EQ(store_->api_reads(), 4U);  // read again
}

}  // namespace
}  // namespace nmid::cloud
