#pragma once

// In-test fakes of the kube transport (kube::KubeletClient, kube::ApiServerClient) and helpers
// shared by the pods tests. Single-threaded: everything runs on the test's io_context.

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nmid/kube/client.hpp"
#include "support/manual_clock.hpp"
#include "support/read_only_api_client.hpp"

namespace nmid::pods_test {

namespace asio = boost::asio;

/// Starts `op` on `ioc`; the returned slot is filled when it completes.
template <class T>
std::shared_ptr<std::optional<T>> start(asio::io_context& ioc, asio::awaitable<T> op,
                                        asio::cancellation_signal* cancel = nullptr) {
    auto out = std::make_shared<std::optional<T>>();
    auto done = [out](const std::exception_ptr& e, T value) {
        if (e) {
            std::rethrow_exception(e);
        }
        *out = std::move(value);
    };
    if (cancel != nullptr) {
        asio::co_spawn(ioc, std::move(op), asio::bind_cancellation_slot(cancel->slot(), done));
    } else {
        asio::co_spawn(ioc, std::move(op), done);
    }
    return out;
}

/// Runs what is ready. restart(): an io_context that ran out of work stays stopped.
inline std::size_t poll(asio::io_context& ioc) {
    ioc.restart();
    return ioc.poll();
}

/// One pod as the kubelet or the API server prints it (items carry no `kind` in a PodList;
/// `kind` is added for watch objects).
inline std::string pod_json(const std::string& ns, const std::string& name, const std::string& ip,
                            const std::string& phase = "Running", const std::string& rv = "",
                            bool with_kind = false) {
    std::string j = "{";
    if (with_kind) {
        j += R"("kind":"Pod","apiVersion":"v1",)";
    }
    j += R"("metadata":{"name":")" + name + R"(","namespace":")" + ns + R"(","uid":")" + ns + "-" +
         name + R"(-uid")";
    if (!rv.empty()) {
        j += R"(,"resourceVersion":")" + rv + '"';
    }
    j += R"(,"labels":{"app":")" + name + R"("}},"spec":{"nodeName":"node-1",)" +
         R"("serviceAccountName":"default","containers":[{"name":"c","image":"i"}]},)" +
         R"("status":{"phase":")" + phase + '"';
    if (!ip.empty()) {
        j += R"(,"podIP":")" + ip + R"(","podIPs":[{"ip":")" + ip + R"("}])";
    }
    j += "}}";
    return j;
}

/// A PodList; `rv` empty: the kubelet's shape (`metadata: {}`), `items: null` when empty.
inline std::string pod_list_json(const std::vector<std::string>& items,
                                 const std::string& rv = "") {
    std::string j = R"({"kind":"PodList","apiVersion":"v1","metadata":{)";
    if (!rv.empty()) {
        j += R"("resourceVersion":")" + rv + '"';
    }
    j += R"(},"items":)";
    if (items.empty() && rv.empty()) {
        return j + "null}";
    }
    j += "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
        j += (i > 0 ? "," : "") + items[i];
    }
    return j + "]}";
}

inline std::string event_json(const std::string& type, const std::string& object) {
    return R"({"type":")" + type + R"(","object":)" + object + "}";
}

inline std::string bookmark_json(const std::string& rv) {
    return event_json("BOOKMARK",
                      R"({"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":")" + rv +
                          R"("},"spec":{"containers":null},"status":{}})");
}

inline std::string status_json(int code, const std::string& reason, const std::string& message) {
    return R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":")" +
           message + R"(","reason":")" + reason + R"(","code":)" + std::to_string(code) + "}";
}

inline kube::Response ok(std::string body) {
    return kube::Response{200, std::move(body), ""};
}

/// Suspends the calling coroutine until wake() or cancellation; the test's io_context.
class Parking {
public:
    asio::awaitable<bool> park() {
        asio::steady_timer timer{co_await asio::this_coro::executor, SteadyTime::max()};
        parked_.push_back(&timer);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        parked_.erase(std::find(parked_.begin(), parked_.end(), &timer));
        const auto state = co_await asio::this_coro::cancellation_state;
        co_return state.cancelled() == asio::cancellation_type::none;
    }
    void wake() {
        for (auto* t : parked_) {
            t->cancel();
        }
    }
    [[nodiscard]] std::size_t parked() const { return parked_.size(); }

private:
    std::vector<asio::steady_timer*> parked_;
};

/// A kubelet whose `/pods` answer the test sets; optionally slow (advances the ManualClock)
/// or held until release().
class FakeKubelet final : public kube::KubeletClient {
public:
    explicit FakeKubelet(test::ManualClock& clock) : clock_(clock) {}

    void answer(Result<kube::Response> r) { answer_ = std::move(r); }
    void answer_pods(const std::vector<std::string>& items) { answer(ok(pod_list_json(items))); }
    /// Each call takes this long (the ManualClock moves before the answer).
    void latency(std::chrono::milliseconds d) { latency_ = d; }
    void hold() { holding_ = true; }
    void release() {
        holding_ = false;
        parking_.wake();
    }

    [[nodiscard]] int calls() const { return calls_; }
    [[nodiscard]] std::size_t held() const { return parking_.parked(); }
    [[nodiscard]] SteadyTime last_deadline() const { return last_deadline_; }

    asio::awaitable<Result<kube::Response>> get_pods(SteadyTime deadline) override {
        ++calls_;
        last_deadline_ = deadline;
        // Like a real server, the answer is the state when the request arrived.
        auto answer = answer_;
        while (holding_) {
            const bool go_on = co_await parking_.park();
            if (!go_on) {
                co_return Errc::cancelled;
            }
        }
        if (latency_ > std::chrono::milliseconds::zero()) {
            clock_.advance(latency_);
        }
        co_return answer;
    }

private:
    test::ManualClock& clock_;
    Result<kube::Response> answer_ = ok(pod_list_json({}));
    std::chrono::milliseconds latency_{0};
    bool holding_ = false;
    Parking parking_;
    int calls_ = 0;
    SteadyTime last_deadline_{};
};

/// An API server the test scripts. GETs take queued answers in order (waiting for one when
/// none is queued). A watch opens as the next queued opening says (an error or a non-200
/// status), or else with 200 and stays open: lines are delivered as the test sends them, and
/// the stream ends when the test ends it.
class FakeApiServer final : public test::ReadOnlyApiServerClient {
public:
    void push_get(Result<kube::Response> r) {
        gets_.push_back(std::move(r));
        parking_.wake();
    }
    void push_watch_open(Result<kube::WatchResult> r) { opens_.push_back(std::move(r)); }
    void send(std::string line) {
        lines_.push_back(std::move(line));
        parking_.wake();
    }
    /// Ends the open (or next) stream: a StreamEnd, or an error such as Errc::io_error.
    void end(Result<kube::StreamEnd> how) {
        end_ = how;
        parking_.wake();
    }

    [[nodiscard]] bool streaming() const { return streaming_; }
    [[nodiscard]] const std::vector<std::string>& get_targets() const { return get_targets_; }
    [[nodiscard]] const std::vector<std::string>& watch_targets() const { return watch_targets_; }
    [[nodiscard]] SteadyTime last_watch_deadline() const { return last_watch_deadline_; }

    asio::awaitable<Result<kube::Response>> get(std::string target, SteadyTime) override {
        get_targets_.push_back(std::move(target));
        while (gets_.empty()) {
            const bool go_on = co_await parking_.park();
            if (!go_on) {
                co_return Errc::cancelled;
            }
        }
        auto r = std::move(gets_.front());
        gets_.pop_front();
        co_return r;
    }

    asio::awaitable<Result<kube::WatchResult>> watch(std::string target, SteadyTime deadline,
                                                     kube::LineHandler on_line) override {
        watch_targets_.push_back(std::move(target));
        last_watch_deadline_ = deadline;
        if (!opens_.empty()) {
            auto r = std::move(opens_.front());
            opens_.pop_front();
            co_return r;
        }
        streaming_ = true;
        for (;;) {
            while (!lines_.empty()) {
                const std::string line = std::move(lines_.front());
                lines_.pop_front();
                if (!on_line(line)) {
                    lines_.clear();
                    streaming_ = false;
                    co_return kube::WatchResult{200, "", kube::StreamEnd::closed};
                }
            }
            if (end_) {
                const auto how = *end_;
                end_.reset();
                streaming_ = false;
                if (!how) {
                    co_return how.error();
                }
                co_return kube::WatchResult{200, "", *how};
            }
            const bool go_on = co_await parking_.park();
            if (!go_on) {
                streaming_ = false;
                co_return Errc::cancelled;
            }
        }
    }

private:
    std::deque<Result<kube::Response>> gets_;
    std::deque<Result<kube::WatchResult>> opens_;
    std::deque<std::string> lines_;
    std::optional<Result<kube::StreamEnd>> end_;
    bool streaming_ = false;
    Parking parking_;
    std::vector<std::string> get_targets_;
    std::vector<std::string> watch_targets_;
    SteadyTime last_watch_deadline_{};
};

}  // namespace nmid::pods_test
