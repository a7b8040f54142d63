#include "support/fake_pod_source.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

namespace nmid::test {

void FakePodSource::set(PodList list) {
    list_ = std::make_shared<const PodList>(std::move(list));
}

void FakePodSource::fail_next(Errc code) {
    fail_next_ = code;
}

void FakePodSource::hold() {
    holding_ = true;
}

void FakePodSource::release() {
    holding_ = false;
    for (auto* timer : held_) {
        timer->cancel();
    }
}

boost::asio::awaitable<Result<std::shared_ptr<const PodList>>> FakePodSource::list(
    SteadyTime deadline) {
    ++calls_;
    last_deadline_ = deadline;
    // Like a real read, the answer is what the source held when the read began.
    auto snapshot = list_;
    if (holding_) {
        boost::asio::steady_timer gate{co_await boost::asio::this_coro::executor,
                                       SteadyTime::max()};
        held_.push_back(&gate);
        co_await gate.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        held_.erase(std::find(held_.begin(), held_.end(), &gate));
        const auto state = co_await boost::asio::this_coro::cancellation_state;
        if (state.cancelled() != boost::asio::cancellation_type::none) {
            co_return Errc::cancelled;
        }
    }
    if (fail_next_) {
        const Errc code = *fail_next_;
        fail_next_.reset();
        co_return code;
    }
    co_return snapshot;
}

PodInfo make_pod(std::string namespace_name, std::string name, std::string ip, std::string phase) {
    PodInfo pod;
    pod.namespace_name = std::move(namespace_name);
    pod.name = std::move(name);
    pod.uid = pod.namespace_name + "-" + pod.name + "-uid";
    pod.service_account = "default";
    pod.phase = std::move(phase);
    if (!ip.empty()) {
        pod.ips.push_back(std::move(ip));
    }
    return pod;
}

}  // namespace nmid::test
