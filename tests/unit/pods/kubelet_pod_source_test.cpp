#include "nmid/pods/kubelet_pod_source.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <string>
#include <vector>

#include "kube_fakes.hpp"
#include "support/manual_clock.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using pods_test::FakeKubelet;
using pods_test::ok;
using pods_test::pod_json;
using pods_test::pod_list_json;
using pods_test::poll;
using pods_test::start;

using ListResult = Result<std::shared_ptr<const PodList>>;

class KubeletPodSourceTest : public ::testing::Test {
protected:
    // Runs one list() to completion: the caller's context and the parse "pool" in turns.
    ListResult read(SteadyTime deadline) {
        auto out = start(io_, source_.list(deadline));
        for (int i = 0; i < 10 && !out->has_value(); ++i) {
            poll(io_);
            poll(parse_);
        }
        EXPECT_TRUE(out->has_value());
        return out->has_value() ? std::move(**out) : ListResult{Errc::timeout};
    }
    ListResult read() { return read(clock_.steady_now() + 2s); }

    asio::io_context io_;     // the caller's (I/O) executor
    asio::io_context parse_;  // stands for the parse thread pool
    test::ManualClock clock_;
    FakeKubelet kubelet_{clock_};
    KubeletPodSource source_{kubelet_, parse_.get_executor(), clock_};
};

std::vector<std::string> names(const PodList& list) {
    std::vector<std::string> out;
    for (const auto& p : list.pods) {
        out.push_back(p.namespace_name + "/" + p.name + "@" + (p.ips.empty() ? "" : p.ips[0]));
    }
    return out;
}

TEST_F(KubeletPodSourceTest, ParsesOnTheParseExecutorAndResumesOnTheCaller) {
    kubelet_.answer_pods(
        {pod_json("default", "web", "10.0.0.1"), pod_json("kube-system", "dns", "10.0.0.2")});
    auto out = start(io_, source_.list(clock_.steady_now() + 2s));
    poll(io_);
    EXPECT_EQ(kubelet_.calls(), 1);
    EXPECT_FALSE(out->has_value());  // the body waits for the parse pool
    EXPECT_GT(poll(parse_), 0U);     // parsed there
    EXPECT_FALSE(out->has_value());  // and the caller resumes on its own executor only
    poll(io_);
    ASSERT_TRUE(out->has_value());
    ASSERT_TRUE(out->value()) << out->value().error().message();
    EXPECT_EQ(names(*out->value().value()),
              (std::vector<std::string>{"default/web@10.0.0.1", "kube-system/dns@10.0.0.2"}));
    EXPECT_EQ(source_.stats().reads, 1U);
    EXPECT_EQ(source_.stats().last_status, 200);
}

TEST_F(KubeletPodSourceTest, SameBodyReturnsTheSamePointerAndANewBodyANewList) {
    kubelet_.answer_pods({pod_json("default", "web", "10.0.0.1")});
    const auto first = read();
    ASSERT_TRUE(first);
    const auto again = read();
    ASSERT_TRUE(again);
    EXPECT_EQ(again->get(), first->get());  // the index skips its rebuild
    EXPECT_EQ(source_.stats().unchanged, 1U);

    kubelet_.answer_pods({pod_json("default", "web", "10.0.0.9")});
    const auto changed = read();
    ASSERT_TRUE(changed);
    EXPECT_NE(changed->get(), first->get());
    EXPECT_EQ(names(**changed), std::vector<std::string>{"default/web@10.0.0.9"});
    EXPECT_EQ(names(**first), std::vector<std::string>{"default/web@10.0.0.1"});  // untouched
    EXPECT_EQ(source_.stats().reads, 3U);
    EXPECT_EQ(source_.stats().unchanged, 1U);
}

TEST_F(KubeletPodSourceTest, SamePodsInAnotherOrderAreUnchanged) {
    // The kubelet lists pods in Go map order: equal content, other bytes.
    kubelet_.answer_pods({pod_json("default", "b", "10.0.0.2"),
                          pod_json("default", "a", "10.0.0.1"), pod_json("app", "c", "10.0.0.3")});
    const auto first = read();
    ASSERT_TRUE(first);
    EXPECT_EQ(names(**first), (std::vector<std::string>{"app/c@10.0.0.3", "default/a@10.0.0.1",
                                                        "default/b@10.0.0.2"}));
    kubelet_.answer_pods({pod_json("default", "a", "10.0.0.1"), pod_json("app", "c", "10.0.0.3"),
                          pod_json("default", "b", "10.0.0.2")});
    const auto reordered = read();
    ASSERT_TRUE(reordered);
    EXPECT_EQ(reordered->get(), first->get());
    EXPECT_EQ(source_.stats().unchanged, 1U);

    kubelet_.answer_pods({pod_json("default", "a", "10.0.0.1"), pod_json("app", "c", "10.0.0.3"),
                          pod_json("default", "b", "10.0.0.2", "Succeeded")});
    const auto changed = read();
    ASSERT_TRUE(changed);
    EXPECT_NE(changed->get(), first->get());
    EXPECT_EQ((*changed)->pods[2].phase, "Succeeded");
}

TEST_F(KubeletPodSourceTest, EmptyNodeListsNullItems) {
    kubelet_.answer(ok(R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":null})"));
    const auto r = read();
    ASSERT_TRUE(r);
    EXPECT_TRUE((*r)->pods.empty());
}

struct FailureCase {
    Result<kube::Response> answer;
    Errc expected;
    int status;  // stats().last_status afterwards
};

TEST_F(KubeletPodSourceTest, FailuresAreValuesWithTheStatusRecordedAndNothingParsed) {
    const std::vector<FailureCase> table = {
        {kube::Response{401, "Unauthorized\n", ""}, Errc::pod_source_failed, 401},
        {kube::Response{403,
                        "Forbidden (user=system:serviceaccount:kube-system:nmid, verb=get, "
                        "resource=nodes, subresource=proxy)",
                        ""},
         Errc::pod_source_failed, 403},
        {kube::Response{500, "Authorization error", ""}, Errc::pod_source_failed, 500},
        {kube::Response{404, "", ""}, Errc::pod_source_failed, 404},
        {Result<kube::Response>{Errc::io_error}, Errc::io_error, 0},
        {Result<kube::Response>{Errc::timeout}, Errc::timeout, 0},
        {Result<kube::Response>{Errc::parse_error}, Errc::parse_error, 0},  // oversized body
        {ok("{\"items\":[{"), Errc::parse_error, 200},
        {ok(R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"x"})"),
         Errc::parse_error, 200},
    };
    std::uint64_t failures = 0;
    for (const auto& c : table) {
        kubelet_.answer(c.answer);
        auto out = start(io_, source_.list(clock_.steady_now() + 2s));
        poll(io_);
        const bool parsed = poll(parse_) > 0;
        poll(io_);
        ASSERT_TRUE(out->has_value());
        ASSERT_FALSE(out->value());
        EXPECT_EQ(out->value().error(), c.expected) << c.status;
        EXPECT_EQ(parsed, c.status == 200) << c.status;  // error bodies never reach the parser
        EXPECT_EQ(source_.stats().last_status, c.status);
        EXPECT_EQ(source_.stats().failures, ++failures);
    }
    EXPECT_EQ(source_.stats().reads, 0U);
}

TEST_F(KubeletPodSourceTest, BadBodyIsNotRememberedAndTheNextGoodBodyIsServed) {
    kubelet_.answer_pods({pod_json("default", "web", "10.0.0.1")});
    const auto good = read();
    ASSERT_TRUE(good);
    kubelet_.answer(ok("not json"));
    EXPECT_EQ(read().error(), Errc::parse_error);
    kubelet_.answer_pods({pod_json("default", "web", "10.0.0.1")});
    const auto back = read();
    ASSERT_TRUE(back);
    EXPECT_EQ(back->get(), good->get());  // same bytes as the last good body
    kubelet_.answer_pods({pod_json("default", "api", "10.0.0.2")});
    const auto next = read();
    ASSERT_TRUE(next);
    EXPECT_EQ(names(**next), std::vector<std::string>{"default/api@10.0.0.2"});
}

TEST_F(KubeletPodSourceTest, DeadlineReachesTheKubeletAndALateAnswerIsNotParsed) {
    kubelet_.answer_pods({pod_json("default", "web", "10.0.0.1")});
    const auto deadline = clock_.steady_now() + 2s;
    kubelet_.latency(2s);  // the answer comes exactly at the deadline
    auto out = start(io_, source_.list(deadline));
    poll(io_);
    EXPECT_EQ(kubelet_.last_deadline(), deadline);
    EXPECT_EQ(poll(parse_), 0U);
    poll(io_);
    ASSERT_TRUE(out->has_value());
    EXPECT_EQ(out->value().error(), Errc::timeout);

    kubelet_.latency(1999ms);  // just in time
    const auto in_time = read(clock_.steady_now() + 2s);
    ASSERT_TRUE(in_time);
    EXPECT_EQ(names(**in_time), std::vector<std::string>{"default/web@10.0.0.1"});
}

TEST_F(KubeletPodSourceTest, CancelledReadIsCancelledAndNotCountedAsAFailure) {
    kubelet_.hold();
    asio::cancellation_signal cancel;
    auto out = start(io_, source_.list(clock_.steady_now() + 2s), &cancel);
    poll(io_);
    EXPECT_EQ(kubelet_.held(), 1U);
    cancel.emit(asio::cancellation_type::terminal);
    poll(io_);
    ASSERT_TRUE(out->has_value());
    EXPECT_EQ(out->value().error(), Errc::cancelled);
    EXPECT_EQ(source_.stats().failures, 0U);
}

}  // namespace
}  // namespace nmid
