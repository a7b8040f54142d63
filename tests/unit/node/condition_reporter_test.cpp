// ConditionReporter against FakeNodeStatus (the status subresource's strategic merge) on a
// manual clock, through an ApiServerClient that hands each PATCH to the fake directly.

#include "nmid/node/condition_reporter.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <stdexcept>

#include "support/fake_node_status.hpp"
#include "support/manual_clock.hpp"
#include "support/read_only_api_client.hpp"

namespace nmid::node {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class DirectClient final : public test::ReadOnlyApiServerClient {
public:
    explicit DirectClient(test::FakeNodeStatus& status) : status_(status) {}
    asio::awaitable<Result<kube::Response>> get(std::string target, SteadyTime) override {
        ADD_FAILURE() << "unexpected GET " << target;
        co_return Errc::io_error;
    }
    asio::awaitable<Result<kube::WatchResult>> watch(std::string target, SteadyTime,
                                                     kube::LineHandler) override {
        ADD_FAILURE() << "unexpected watch " << target;
        co_return Errc::io_error;
    }
    asio::awaitable<Result<kube::Response>> patch(std::string target, std::string body,
                                                  std::string content_type, SteadyTime) override {
        if (down) {
            co_return Errc::io_error;
        }
        test::FakeRequest request;
        request.method = "PATCH";
        request.target = std::move(target);
        request.headers["Content-Type"] = std::move(content_type);
        request.body = std::move(body);
        const auto r = status_.handle(request);
        kube::Response out;
        out.status = r.status;
        out.body = r.body;
        co_return out;
    }
    bool down = false;

private:
    test::FakeNodeStatus& status_;
};

class ConditionReporterTest : public ::testing::Test {
protected:
    ConditionReporterTest() {
        status_.attach(api_);
        api_.create("nodes", test::node_object("node-1"));
    }
    ~ConditionReporterTest() override {
        stop_.emit(asio::cancellation_type::terminal);
        ioc_.restart();
        ioc_.poll();
    }

    void start() {
        asio::co_spawn(ioc_, reporter_.run(),
                       asio::bind_cancellation_slot(stop_.slot(), asio::detached));
        poll();
    }
    void poll() {
        ioc_.restart();
        ioc_.poll();
    }
    void advance(std::chrono::nanoseconds d) {
        clock_.advance(d);
        poll();
    }
    [[nodiscard]] std::string status_of(const std::string& field) const {
        const auto c = status_.condition("node-1", "NmidReady");
        return c.is_null() ? "<none>" : c.value(field, "");
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    test::FakeApiServer api_{test::with_nodes(), nullptr};
    test::FakeNodeStatus status_;
    DirectClient client_{status_};
    std::vector<Check> checks_{{"pods", false, "no successful read yet"}, {"crds", true, ""}};
    ConditionReporter reporter_{client_, clock_, ReporterSettings{.node = "node-1"},
                                [this] { return checks_; }};
    asio::cancellation_signal stop_;
};

TEST_F(ConditionReporterTest, FalseUntilReadyThenTrueKeepingKubeletsConditions) {
    start();
    EXPECT_EQ(status_of("status"), "False");
    EXPECT_EQ(status_of("reason"), "NmidNotReady");
    EXPECT_EQ(status_of("message"), "nmid is not ready: pods: no successful read yet");
    ASSERT_EQ(status_.calls().size(), 1U);
    EXPECT_EQ(status_.calls()[0].content_type, "application/strategic-merge-patch+json");
    const std::string first_transition = status_of("lastTransitionTime");

    advance(1s);
    EXPECT_EQ(status_.calls().size(), 1U) << "nothing changed: no write";

    checks_[0].ready = true;
    advance(10s);
    EXPECT_EQ(status_of("status"), "True");
    EXPECT_EQ(status_of("reason"), "NmidReady");
    EXPECT_NE(status_of("lastTransitionTime"), first_transition);
    EXPECT_EQ(status_.condition("node-1", "Ready").value("status", ""), "True")
        << "kubelet's condition survives the patch";
    EXPECT_EQ(status_.conditions("node-1").size(), 2U);
    EXPECT_TRUE(reporter_.stats().written_ready);
    EXPECT_EQ(reporter_.stats().writes, 2U);
}

TEST_F(ConditionReporterTest, HeartbeatRewritesAndRestoresAnOverwrittenCondition) {
    checks_[0].ready = true;
    start();
    const std::string transition = status_of("lastTransitionTime");
    const std::size_t writes = status_.calls().size();
    advance(5min);
    EXPECT_GT(status_.calls().size(), writes);
    EXPECT_EQ(status_of("lastTransitionTime"), transition) << "a heartbeat is not a transition";
    EXPECT_NE(status_of("lastHeartbeatTime"), transition);
}

TEST_F(ConditionReporterTest, FailedWritesBackOffAndRecover) {
    client_.down = true;
    start();
    EXPECT_EQ(reporter_.stats().failures, 1U);
    advance(1s);  // retry after 1 s
    EXPECT_EQ(reporter_.stats().failures, 2U);
    advance(1s);  // the next one waits 2 s
    EXPECT_EQ(reporter_.stats().failures, 2U);
    advance(1s);
    EXPECT_EQ(reporter_.stats().failures, 3U);
    client_.down = false;
    advance(4s);
    EXPECT_EQ(status_of("status"), "False");
    EXPECT_EQ(reporter_.stats().writes, 1U);
}

TEST_F(ConditionReporterTest, AnUnknownNodeIsA404AndAStopWritesFalse) {
    ConditionReporter other{client_, clock_, ReporterSettings{.node = "node-2"},
                            [this] { return checks_; }};
    asio::co_spawn(ioc_, other.write_stopping(), asio::detached);
    poll();
    EXPECT_EQ(other.stats().last_status, 404);
    EXPECT_EQ(other.stats().failures, 1U);

    checks_[0].ready = true;
    start();
    EXPECT_EQ(status_of("status"), "True");
    asio::co_spawn(ioc_, reporter_.write_stopping(), asio::detached);
    poll();
    EXPECT_EQ(status_of("status"), "False");
    EXPECT_EQ(status_of("reason"), "NmidStopping");
}

TEST(ConditionReporterSettings, AnInvalidNodeNameIsRefusedAtConstruction) {
    test::ManualClock clock;
    test::FakeNodeStatus status;
    DirectClient client{status};
    EXPECT_THROW(ConditionReporter(client, clock, ReporterSettings{.node = "../x"},
                                   [] { return std::vector<Check>{}; }),
                 std::invalid_argument);
}

}  // namespace
}  // namespace nmid::node
