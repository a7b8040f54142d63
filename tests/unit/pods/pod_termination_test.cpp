// Issue 11, finding 7: a pod being deleted whose containers have all exited, or a pod in a
// terminal phase, is never answered for: its IP may already belong to a new pod that the
// source does not list yet. Checked through every path a pod takes into the index: the
// kubelet / pods-file PodList parser, the API server's LIST and its watch events.

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "kube_fakes.hpp"
#include "nmid/pods/api_server_pod_source.hpp"
#include "nmid/pods/pod_eligibility.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/pods/pod_list_json.hpp"
#include "support/fake_pod_source.hpp"
#include "support/manual_clock.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using pods_test::event_json;
using pods_test::FakeApiServer;
using pods_test::ok;
using pods_test::poll;
using pods_test::start;

const char* const kRunning = R"({"running":{"startedAt":"2026-12-06T04:00:00Z"}})";
const char* const kTerminated =
    R"({"terminated":{"exitCode":0,"reason":"Completed","startedAt":"2026-12-06T04:00:00Z",)"
    R"("finishedAt":"2026-12-06T04:10:00Z","containerID":"containerd://1"}})";
const char* const kWaiting = R"({"waiting":{"reason":"ContainerCreating"}})";

struct TerminationCase {
    const char* name;
    const char* phase;
    bool deleting;                    // metadata.deletionTimestamp set
    std::vector<std::string> states;  // status.containerStatuses[].state, in order
    bool answered;                    // indexed by IP and found by name
    const char* last_state = "";      // lastState of the first container (when non-empty)
};

const std::vector<TerminationCase>& cases() {
    static const std::vector<TerminationCase> table = {
        {"running", "Running", false, {kRunning, kRunning}, true},
        {"grace-period: deleting, a container still runs", "Running", true, {kRunning}, true},
        {"deleting, one of two containers exited", "Running", true, {kTerminated, kRunning}, true},
        {"deleting, every container exited", "Running", true, {kTerminated, kTerminated}, false},
        {"deleting, the one container exited", "Running", true, {kTerminated}, false},
        {"deleting, phase still Pending, container exited", "Pending", true, {kTerminated}, false},
        {"deleting, no phase, container exited", "", true, {kTerminated}, false},
        {"deleting, container still being created", "Pending", true, {kWaiting}, true},
        {"deleting, no container status: the source does not say", "Running", true, {}, true},
        {"exited containers of a pod not being deleted (restarting)",
         "Running",
         false,
         {kTerminated},
         true},
        {"deleting, only the last state terminated",
         "Running",
         true,
         {kRunning},
         true,
         kTerminated},
        {"Succeeded", "Succeeded", false, {kTerminated}, false},
        {"Failed", "Failed", false, {kTerminated}, false},
        {"Succeeded and deleting", "Succeeded", true, {kTerminated}, false},
        {"Unknown", "Unknown", false, {kRunning}, false},
    };
    return table;
}

std::string ip_of(std::size_t i) {
    return "10.1.0." + std::to_string(i + 1);
}

// Case `i` as the kubelet or the API server prints the pod (`kind` only for watch objects).
std::string pod_json(std::size_t i, bool with_kind = false, const std::string& rv = "") {
    const TerminationCase& c = cases()[i];
    std::string j = "{";
    if (with_kind) {
        j += R"("kind":"Pod","apiVersion":"v1",)";
    }
    j += R"("metadata":{"name":"p)" + std::to_string(i) + R"(","namespace":"default","uid":"u)" +
         std::to_string(i) + '"';
    if (!rv.empty()) {
        j += R"(,"resourceVersion":")" + rv + '"';
    }
    if (c.deleting) {
        j += R"(,"deletionTimestamp":"2026-12-06T04:10:00Z","deletionGracePeriodSeconds":30)";
    }
    j += R"(},"spec":{"containers":[{"name":"c","image":"i"}]},"status":{)";
    if (*c.phase != '\0') {
        j += R"("phase":")" + std::string{c.phase} + R"(",)";
    }
    j += R"("podIP":")" + ip_of(i) + '"';
    if (!c.states.empty()) {
        j += R"(,"containerStatuses":[)";
        for (std::size_t k = 0; k < c.states.size(); ++k) {
            j += k > 0 ? "," : "";
            j += R"({"name":"c)" + std::to_string(k) + R"(","state":)" + c.states[k];
            if (k == 0 && *c.last_state != '\0') {
                j += R"(,"lastState":)" + std::string{c.last_state};
            }
            j += R"(,"ready":false,"restartCount":0})";
        }
        j += "]";
    }
    return j + "}}";
}

std::vector<std::string> all_pods_json(bool with_kind) {
    std::vector<std::string> items;
    for (std::size_t i = 0; i < cases().size(); ++i) {
        items.push_back(pod_json(i, with_kind));
    }
    return items;
}

// What the index answers for case `i`: "p<i>" or the error.
void expect_answers(const PodIndex& index) {
    for (std::size_t i = 0; i < cases().size(); ++i) {
        const TerminationCase& c = cases()[i];
        SCOPED_TRACE(c.name);
        const auto by_ip = index.find(asio::ip::make_address(ip_of(i)));
        const auto by_name = index.find_by_name("default", "p" + std::to_string(i));
        if (c.answered) {
            ASSERT_TRUE(by_ip) << by_ip.error().message();
            EXPECT_EQ((*by_ip)->name, "p" + std::to_string(i));
            EXPECT_TRUE(by_name);
        } else {
            EXPECT_EQ(by_ip.error(), Errc::pod_not_found);
            EXPECT_EQ(by_name.error(), Errc::pod_not_found);
        }
    }
}

std::size_t answered_count() {
    std::size_t n = 0;
    for (const auto& c : cases()) {
        n += c.answered ? 1 : 0;
    }
    return n;
}

TEST(PodTermination, ParserCountsContainerStatesOfListsAndWatchEvents) {
    for (std::size_t i = 0; i < cases().size(); ++i) {
        const TerminationCase& c = cases()[i];
        SCOPED_TRACE(c.name);
        std::size_t terminated = 0;
        for (const auto& s : c.states) {
            terminated += s == kTerminated ? 1 : 0;
        }
        std::string detail;
        auto list = parse_pod_list(pods_test::pod_list_json({pod_json(i)}), &detail);
        ASSERT_TRUE(list) << detail;
        ASSERT_EQ(list->pods.size(), 1U);
        EXPECT_EQ(list->pods[0].terminating, c.deleting);
        EXPECT_EQ(list->pods[0].container_statuses, c.states.size());
        EXPECT_EQ(list->pods[0].containers_terminated, terminated);
        auto event = parse_pod_watch_event(event_json("MODIFIED", pod_json(i, true, "7")), &detail);
        ASSERT_TRUE(event) << detail;
        EXPECT_EQ(event->pod, list->pods[0]);
    }
}

TEST(PodTermination, EligibilityTable) {
    for (std::size_t i = 0; i < cases().size(); ++i) {
        const TerminationCase& c = cases()[i];
        SCOPED_TRACE(c.name);
        auto list = parse_pod_list(pods_test::pod_list_json({pod_json(i)}));
        ASSERT_TRUE(list);
        PodInfo pod = list->pods[0];
        EXPECT_EQ(answered_for(pod), c.answered);
        EXPECT_EQ(indexed_by_ip(pod), c.answered);
        pod.host_network = true;  // still named by /host/token, never by IP
        EXPECT_EQ(answered_for(pod), c.answered);
        EXPECT_FALSE(indexed_by_ip(pod));
    }
}

// The kubelet's /pods and a pods file: one PodList body.
TEST(PodTermination, KubeletOrFilePodListIndex) {
    asio::io_context ioc;
    test::ManualClock clock;
    test::FakePodSource source;
    PodIndex index{ioc.get_executor(), source, clock, PodSettings{}};
    std::string detail;
    auto list = parse_pod_list(pods_test::pod_list_json(all_pods_json(false)), &detail);
    ASSERT_TRUE(list) << detail;
    source.set(*list);
    auto r = start(ioc, index.refresh());
    poll(ioc);
    ASSERT_TRUE(r->has_value() && r->value());
    expect_answers(index);
    EXPECT_EQ(index.stats().pods, answered_count());
}

class ApiServerTermination : public ::testing::Test {
protected:
    ApiServerTermination()
        : source_(io_.get_executor(), api_, clock_, parse_.get_executor(), settings()),
          index_(io_.get_executor(), source_, clock_, index_settings()) {}

    ~ApiServerTermination() override {
        cancel_.emit(asio::cancellation_type::terminal);
        settle();
    }

    static ApiServerPodSourceSettings settings() {
        ApiServerPodSourceSettings s;
        s.node_name = "node-1";
        s.jitter = 0.0;
        return s;
    }
    static PodSettings index_settings() {
        PodSettings s;
        s.min_refresh_interval = Millis{0};
        return s;
    }

    void run() {
        asio::co_spawn(io_, source_.run(),
                       asio::bind_cancellation_slot(cancel_.slot(), asio::detached));
        settle();
    }
    // Runs both contexts until nothing is ready (LIST bodies are parsed on `parse_`).
    void settle() {
        for (int i = 0; i < 20; ++i) {
            if (poll(io_) + poll(parse_) == 0) {
                break;
            }
        }
    }
    void refresh() {
        auto r = start(io_, index_.refresh());
        settle();
        ASSERT_TRUE(r->has_value() && r->value());
    }

    asio::io_context io_;
    asio::io_context parse_;
    test::ManualClock clock_;
    FakeApiServer api_;
    ApiServerPodSource source_;
    PodIndex index_;
    asio::cancellation_signal cancel_;
};

TEST_F(ApiServerTermination, ListedPodsIndex) {
    api_.push_get(ok(pods_test::pod_list_json(all_pods_json(true), "1")));
    run();
    refresh();
    expect_answers(index_);
}

TEST_F(ApiServerTermination, WatchEventsIndex) {
    api_.push_get(ok(pods_test::pod_list_json({}, "1")));
    run();
    for (std::size_t i = 0; i < cases().size(); ++i) {
        api_.send(event_json("ADDED", pod_json(i, true, std::to_string(i + 2))));
    }
    settle();
    refresh();
    expect_answers(index_);
}

// The attack of finding 7: the old pod's containers exit while it is still listed, and its IP
// goes to a new pod the source has not reported yet. From the MODIFIED event on, the IP is
// unknown (a retryable miss), never the old pod; then the new pod's ADDED event maps it.
TEST_F(ApiServerTermination, ExitedPodsIpIsNotServedAsTheOldPodWhileTheNewOneIsUnlisted) {
    const std::size_t running = 0;  // "running"
    const std::size_t exited = 3;   // "deleting, every container exited"
    ASSERT_TRUE(cases()[running].answered);
    ASSERT_FALSE(cases()[exited].answered);
    // The same pod, first running, then deleted with its containers exited: same name, uid, IP.
    std::string before = pod_json(running, true, "2");
    std::string after = pod_json(exited, true, "3");
    const auto rename = [](std::string& j, const std::string& from, const std::string& to) {
        for (auto at = j.find(from); at != std::string::npos; at = j.find(from, at + to.size())) {
            j.replace(at, from.size(), to);
        }
    };
    rename(after, R"("name":"p3")", R"("name":"p0")");
    rename(after, R"("uid":"u3")", R"("uid":"u0")");
    rename(after, ip_of(exited), ip_of(running));
    api_.push_get(ok(pods_test::pod_list_json({before}, "1")));
    run();
    refresh();
    const auto ip = asio::ip::make_address(ip_of(running));
    ASSERT_TRUE(index_.find(ip));

    api_.send(event_json("MODIFIED", after));
    settle();
    refresh();
    EXPECT_EQ(index_.find(ip).error(), Errc::pod_not_found);
    EXPECT_EQ(index_.find_by_name("default", "p0").error(), Errc::pod_not_found);

    std::string newcomer = pod_json(running, true, "4");
    rename(newcomer, R"("name":"p0")", R"("name":"newcomer")");
    rename(newcomer, R"("uid":"u0")", R"("uid":"u-new")");
    api_.send(event_json("ADDED", newcomer));
    settle();
    refresh();
    const auto found = index_.find(ip);
    ASSERT_TRUE(found);
    EXPECT_EQ((*found)->name, "newcomer");
}

}  // namespace
}  // namespace nmid
