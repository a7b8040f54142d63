#include "nmid/crd/crd_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>
#include <thread>

#include "log_capture.hpp"
#include "support/manual_clock.hpp"

namespace nmid {
namespace {

CrdSnapshotPtr snapshot_with_identity(const std::string& name) {
    auto s = std::make_shared<CrdSnapshot>();
    s->identities.emplace_back();
    s->identities.back().meta.name = name;
    s->identities.back().client_id = "client-" + name;
    return s;
}

TEST(CrdStore, EmptyAndNotReadyBeforeFirstPublish) {
    const CrdStore store;
    const CrdSnapshotPtr s = store.snapshot();
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->identities.empty());
    EXPECT_FALSE(store.ready());
    EXPECT_EQ(store.generation(), 0U);
}

TEST(CrdStore, PublishReplacesSnapshotAndCountsGenerations) {
    CrdStore store;
    const CrdSnapshotPtr first = snapshot_with_identity("one");
    store.publish(first);
    EXPECT_EQ(store.snapshot(), first);
    EXPECT_TRUE(store.ready());
    EXPECT_EQ(store.generation(), 1U);

    const CrdSnapshotPtr held = store.snapshot();
    store.publish(snapshot_with_identity("two"));
    EXPECT_EQ(store.generation(), 2U);
    EXPECT_EQ(store.snapshot()->identities.at(0).meta.name, "two");
    // A reader's snapshot stays valid and unchanged after a publish.
    EXPECT_EQ(held->identities.at(0).meta.name, "one");
}

AzureIdentity identity(const std::string& ns, const std::string& name, int type,
                       const std::string& client_id, const std::string& rv = "1") {
    AzureIdentity id;
    id.meta.namespace_name = ns;
    id.meta.name = name;
    id.meta.resource_version = rv;
    id.type = type;
    id.client_id = client_id;
    if (type != 0) {
        id.tenant_id = "tenant";
        id.client_password = {.namespace_name = ns, .name = name + "-secret"};
    }
    return id;
}

// Findings 2 and 3 of issue 11, whatever the source: an identity naming no identity (IMDS
// would answer as the node) and one reading another namespace's Secret never reach a snapshot.
TEST(CrdStore, PublishLeavesOutIdentitiesThatFailValidation) {
    CrdStore store;
    auto in = std::make_shared<CrdSnapshot>();
    AzureIdentity thief = identity("team-b", "thief", 1, "c-thief");
    thief.client_password.namespace_name = "team-a";
    AzureIdentity plain_http = identity("team-b", "plain-http", 1, "c-http");
    plain_http.ad_endpoint = "http://login.microsoftonline.com/";
    in->identities = {identity("team-b", "good", 0, "c-good"),
                      identity("team-b", "nameless", 0, ""), thief, plain_http};
    store.publish(in);
    const CrdSnapshotPtr s = store.snapshot();
    ASSERT_EQ(s->identities.size(), 1U);
    EXPECT_EQ(s->identities[0].meta.name, "good");
    EXPECT_EQ(store.generation(), 1U);

    const auto rejected = store.rejections();
    ASSERT_EQ(rejected->size(), 3U);
    EXPECT_EQ((*rejected)[0].name, "nameless");
    EXPECT_EQ((*rejected)[0].rejection.reason, RejectReason::no_client_or_resource_id);
    EXPECT_EQ((*rejected)[1].name, "thief");
    EXPECT_EQ((*rejected)[1].rejection.reason, RejectReason::cross_namespace_secret);
    EXPECT_EQ((*rejected)[2].name, "plain-http");
    EXPECT_EQ((*rejected)[2].rejection.reason, RejectReason::ad_endpoint_not_https);
    const auto counts = store.rejection_counts();
    EXPECT_EQ(counts[static_cast<std::size_t>(RejectReason::no_client_or_resource_id)], 1U);
    EXPECT_EQ(counts[static_cast<std::size_t>(RejectReason::cross_namespace_secret)], 1U);
    EXPECT_EQ(counts[static_cast<std::size_t>(RejectReason::ad_endpoint_not_https)], 1U);
    EXPECT_EQ(counts[static_cast<std::size_t>(RejectReason::unsupported_type)], 0U);

    // Fixed: the next publish serves it and forgets the rejection.
    in = std::make_shared<CrdSnapshot>();
    in->identities = {identity("team-b", "nameless", 0, "c-now", "2")};
    store.publish(in);
    EXPECT_EQ(store.snapshot()->identities.size(), 1U);
    EXPECT_TRUE(store.rejections()->empty());
}

TEST(CrdStore, ThePolicyDecidesCrossNamespaceSecretsAndAuthorities) {
    CrdStore store{IdentityPolicy{.allow_cross_namespace_secrets = true,
                                  .extra_authorities = {{.host = "127.0.0.1"}}}};
    auto in = std::make_shared<CrdSnapshot>();
    AzureIdentity sp = identity("team-b", "sp", 2, "c-sp");
    sp.client_password.namespace_name = "shared-secrets";
    sp.ad_endpoint = "https://127.0.0.1:4443/";
    in->identities = {sp};
    store.publish(in);
    EXPECT_EQ(store.snapshot(), in);  // nothing refused: published as it is
    EXPECT_TRUE(store.rejections()->empty());
}

TEST(CrdStore, EachRejectionIsLoggedOncePerResourceVersionWithItsReasonAndNoSecret) {
    const test::LogCapture log;
    CrdStore store;
    auto with = [](std::vector<AzureIdentity> ids) {
        auto s = std::make_shared<CrdSnapshot>();
        s->identities = std::move(ids);
        return s;
    };
    AzureIdentity sp = identity("team-b", "sp", 1, "c-sp", "7");
    sp.ad_endpoint = "https://user:hunter2@evil.example/";
    const AzureIdentity nameless = identity("team-b", "nameless", 0, "", "5");
    store.publish(with({nameless, sp}));
    store.publish(with({nameless, sp}));  // unchanged objects: no new line
    store.publish(with({nameless, identity("team-b", "ok", 0, "c-ok")}));
    AzureIdentity nameless_v6 = nameless;
    nameless_v6.meta.resource_version = "6";
    store.publish(with({nameless_v6}));  // a new version of the object: logged again
    store.publish(with({}));
    store.publish(with({nameless_v6}));  // gone and back: logged again

    const auto warnings = log.lines("warning");
    ASSERT_EQ(warnings.size(), 4U);
    EXPECT_NE(warnings[0].find("AzureIdentity team-b/nameless (resourceVersion 5): "
                               "no_client_or_resource_id"),
              std::string::npos)
        << warnings[0];
    EXPECT_NE(warnings[1].find("team-b/sp (resourceVersion 7): ad_endpoint_invalid"),
              std::string::npos)
        << warnings[1];
    EXPECT_NE(warnings[2].find("team-b/nameless (resourceVersion 6)"), std::string::npos);
    EXPECT_NE(warnings[3].find("team-b/nameless (resourceVersion 6)"), std::string::npos);
    for (const auto& line : warnings) {
        EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
    }
}

TEST(CrdStore, PublishingNullPublishesAnEmptySnapshot) {
    CrdStore store;
    store.publish(snapshot_with_identity("one"));
    store.publish(nullptr);
    ASSERT_NE(store.snapshot(), nullptr);
    EXPECT_TRUE(store.snapshot()->identities.empty());
    EXPECT_EQ(store.generation(), 2U);
}

TEST(CrdStore, ReadersOnOtherThreadsAlwaysSeeACompleteSnapshot) {
    CrdStore store;
    constexpr int kPublishes = 2000;
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::thread reader{[&] {
        std::uint64_t last_generation = 0;
        while (!stop.load()) {
            const std::uint64_t generation = store.generation();
            const CrdSnapshotPtr s = store.snapshot();
            if (s == nullptr || generation < last_generation ||
                (generation > 0 && s->identities.size() != 1)) {
                bad.fetch_add(1);
            }
            last_generation = generation;
        }
    }};
    for (int i = 0; i < kPublishes; ++i) {
        store.publish(snapshot_with_identity(std::to_string(i)));
    }
    stop.store(true);
    reader.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(store.generation(), static_cast<std::uint64_t>(kPublishes));
    EXPECT_EQ(store.snapshot()->identities.at(0).meta.name, std::to_string(kPublishes - 1));
}

}  // namespace
}  // namespace nmid

namespace nmid {
namespace {

using namespace std::chrono_literals;

struct WaitNewer : ::testing::Test {
    boost::asio::io_context ioc;
    test::ManualClock clock;
    CrdStore store;
    std::optional<std::uint64_t> result;

    void start(std::uint64_t seen, std::chrono::nanoseconds budget) {
        boost::asio::co_spawn(
            ioc,
            [this, seen, budget]() -> boost::asio::awaitable<void> {
                result = co_await store.wait_newer(
                    seen, clock,
                    clock.steady_now() + std::chrono::duration_cast<SteadyTime::duration>(budget));
            },
            boost::asio::detached);
        ioc.poll();
    }
};

TEST_F(WaitNewer, ReturnsAtOnceWhenANewerSnapshotIsAlreadyThere) {
    store.publish(snapshot_with_identity("one"));
    start(0, 10s);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, 1U);
    EXPECT_EQ(store.waiters(), 0U);
}

TEST_F(WaitNewer, WakesOnThePublishNotOnTheClock) {
    store.publish(snapshot_with_identity("one"));
    start(1, 80s);
    EXPECT_FALSE(result.has_value());
    EXPECT_EQ(store.waiters(), 1U);
    clock.advance(79s);
    ioc.poll();
    EXPECT_FALSE(result.has_value());
    store.publish(snapshot_with_identity("two"));
    ioc.poll();
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, 2U);
    EXPECT_EQ(store.waiters(), 0U);
    EXPECT_EQ(clock.waiters(), 0U);  // the deadline wait was cancelled, not left behind
}

TEST_F(WaitNewer, GivesUpAtTheDeadlineWithTheSameGeneration) {
    store.publish(snapshot_with_identity("one"));
    start(1, 5s);
    clock.advance(4s);
    ioc.poll();
    EXPECT_FALSE(result.has_value());
    clock.advance(1s);
    ioc.poll();
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, 1U);
    EXPECT_EQ(store.waiters(), 0U);
}

TEST_F(WaitNewer, APublishFromAnotherThreadWakesAllWaiters) {
    store.publish(snapshot_with_identity("one"));
    int woken = 0;
    for (int i = 0; i < 3; ++i) {
        boost::asio::co_spawn(
            ioc,
            [&]() -> boost::asio::awaitable<void> {
                co_await store.wait_newer(1, clock, clock.steady_now() + 60s);
                ++woken;
            },
            boost::asio::detached);
    }
    ioc.poll();
    EXPECT_EQ(store.waiters(), 3U);
    std::thread publisher{[&] { store.publish(snapshot_with_identity("two")); }};
    publisher.join();
    ioc.run_for(5s);  // bounded safety net: returns as soon as the three waiters finished
    EXPECT_EQ(woken, 3);
}

}  // namespace
}  // namespace nmid
