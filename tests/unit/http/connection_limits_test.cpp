// Per-pod connection fairness, socket-free (issue 11.4): the admission decision and the per-IP
// table with its idle marks.

#include "../../../daemon/http/connection_limits.hpp"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/ip/address.hpp>
#include <vector>

namespace nmid::http::detail {
namespace {

using boost::asio::ip::make_address;

TEST(Admit, Table) {
    struct Case {
        std::size_t peer_connections;
        std::size_t active;
        std::size_t max_per_peer;
        std::size_t max_connections;
        Admission expected;
    };
    const std::vector<Case> cases = {
        {0, 0, 64, 4096, Admission::accept},
        {63, 100, 64, 4096, Admission::accept},
        {64, 100, 64, 4096, Admission::over_peer_limit},
        {65, 100, 64, 4096, Admission::over_peer_limit},
        {10, 4096, 64, 4096, Admission::over_global_limit},
        {64, 4096, 64, 4096, Admission::over_peer_limit},  // the pod's own cap first
        {5000, 100, 0, 4096, Admission::accept},           // 0: no per-IP cap (admin)
        {5000, 4096, 0, 4096, Admission::over_global_limit},
        {0, 1, 1, 1, Admission::over_global_limit},
        {1, 1, 1, 1, Admission::over_peer_limit},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(admit(c.peer_connections, c.active, c.max_per_peer, c.max_connections),
                  c.expected)
            << c.peer_connections << " " << c.active << " " << c.max_per_peer << " "
            << c.max_connections;
    }
}

TEST(IdleMark, ClaimWinsOnlyOverTheSameIdlePeriod) {
    IdleMark m;
    EXPECT_EQ(m.idle_since(), 0);
    EXPECT_FALSE(m.claim(0));  // busy: never claimed
    m.idle(10);
    EXPECT_EQ(m.idle_since(), 10);
    EXPECT_TRUE(m.busy());  // woke first: the claim of that idle period loses
    EXPECT_FALSE(m.claim(10));
    m.idle(20);
    EXPECT_FALSE(m.claim(10));  // a later idle period
    EXPECT_TRUE(m.claim(20));
    EXPECT_EQ(m.idle_since(), 0);
    EXPECT_FALSE(m.busy());  // claimed: the connection must close
}

TEST(PeerTable, CountsPerAddressAndForgetsAtZero) {
    PeerTable t;
    Peer& a = t.reserve(make_address("10.0.0.1"));
    Peer& a2 = t.reserve(make_address("10.0.0.1"));
    EXPECT_EQ(&a, &a2);
    t.reserve(make_address("10.0.0.2"));
    EXPECT_EQ(t.count(make_address("10.0.0.1")), 2U);
    EXPECT_EQ(t.count(make_address("10.0.0.2")), 1U);
    EXPECT_EQ(t.count(make_address("10.0.0.3")), 0U);
    EXPECT_EQ(t.peers(), 2U);
    t.release(a);
    t.release(a);
    EXPECT_EQ(t.count(make_address("10.0.0.1")), 0U);
    EXPECT_EQ(t.peers(), 1U);
}

TEST(PeerTable, ClaimsTheIdleLongestOfThatAddressOnly) {
    PeerTable t;
    Peer& a = t.reserve(make_address("10.0.0.1"));
    t.reserve(make_address("10.0.0.1"));
    t.reserve(make_address("10.0.0.1"));
    Peer& b = t.reserve(make_address("10.0.0.2"));
    std::array<PeerLink, 3> as{};
    PeerLink bl;
    for (std::size_t i = 0; i < as.size(); ++i) {
        as[i].id = i + 1;
        PeerTable::link(a, as[i]);
    }
    bl.id = 9;
    PeerTable::link(b, bl);
    bl.mark.idle(1);  // idle longest of all, but another address

    EXPECT_EQ(PeerTable::claim_idle(a), nullptr);  // all busy
    as[0].mark.idle(30);
    as[2].mark.idle(20);
    PeerLink* first = PeerTable::claim_idle(a);
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(first->id, 3U);         // idle since 20, before 30
    EXPECT_EQ(first->peer, nullptr);  // unlinked: never claimed twice
    EXPECT_FALSE(as[2].mark.busy());
    PeerLink* second = PeerTable::claim_idle(a);
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(second->id, 1U);
    EXPECT_EQ(PeerTable::claim_idle(a), nullptr);
    EXPECT_EQ(t.count(make_address("10.0.0.1")), 3U);  // released when they end, not now

    PeerTable::unlink(as[0]);  // already unlinked: no-op
    PeerTable::unlink(as[1]);
    EXPECT_EQ(a.first, nullptr);
    EXPECT_EQ(a.last, nullptr);
    PeerTable::unlink(bl);
}

TEST(PeerTable, GlobalClaimTakesFromTheAddressHoldingMost) {
    PeerTable t;
    Peer& small = t.reserve(make_address("10.0.0.1"));
    Peer& big = t.reserve(make_address("10.0.0.2"));
    t.reserve(make_address("10.0.0.2"));
    PeerLink s;
    PeerLink b1;
    PeerLink b2;
    s.id = 1;
    b1.id = 2;
    b2.id = 3;
    PeerTable::link(small, s);
    PeerTable::link(big, b1);
    PeerTable::link(big, b2);
    s.mark.idle(1);
    EXPECT_EQ(t.claim_idle_of_busiest(), nullptr);  // the busiest has none idle: 503
    b2.mark.idle(5);
    PeerLink* v = t.claim_idle_of_busiest();
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->id, 3U);
    PeerTable::unlink(s);
    PeerTable::unlink(b1);
}

}  // namespace
}  // namespace nmid::http::detail
