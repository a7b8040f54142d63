#include "support/fake_token_source.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <utility>

namespace nmid::test {

namespace asio = boost::asio;

boost::asio::awaitable<FetchResult> FakeTokenSource::fetch(const TokenRequest& request,
                                                           SteadyTime deadline) {
    const int call = ++calls_;
    requests_.push_back(request);
    deadlines_.push_back(deadline);
    started_.push_back(clock_.steady_now());
    std::optional<FetchResult> scripted;
    std::chrono::nanoseconds duration = duration_;
    if (!replies_.empty()) {
        scripted = std::move(replies_.front().reply);
        duration = replies_.front().duration;
        replies_.pop_front();
    }
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);

    auto cancelled = [](const asio::cancellation_state& state) {
        return state.cancelled() != asio::cancellation_type::none;
    };
    bool was_cancelled = false;
    if (duration > std::chrono::nanoseconds::zero()) {
        co_await clock_.wait_until(clock_.steady_now() + duration);
        was_cancelled = cancelled(co_await asio::this_coro::cancellation_state);
    }
    const std::uint64_t generation = releases_;
    while (!was_cancelled && held_ && generation == releases_) {
        asio::steady_timer gate{co_await asio::this_coro::executor, SteadyTime::max()};
        gates_.push_back(&gate);
        co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
        std::erase(gates_, &gate);
        was_cancelled = cancelled(co_await asio::this_coro::cancellation_state);
    }
    --in_flight_;
    if (was_cancelled) {
        ++cancelled_;
        co_return error(Errc::cancelled);
    }
    if (scripted) {
        co_return std::move(*scripted);
    }
    co_return make_token(request.resource, clock_.unix_seconds() + lifetime_.count(),
                         "token-" + std::to_string(call));
}

void FakeTokenSource::push(FetchResult reply, std::chrono::nanoseconds duration) {
    replies_.push_back(Scripted{std::move(reply), duration});
}

void FakeTokenSource::push_error(Errc code, int status, std::chrono::seconds retry_after) {
    push(error(code, status, retry_after));
}

FetchError FakeTokenSource::error(Errc code, int status, std::chrono::seconds retry_after) {
    return FetchError{.code = code,
                      .upstream_status = status,
                      .retry_after = retry_after,
                      .upstream_body = "{\"error\":\"scripted\"}"};
}

void FakeTokenSource::release() {
    held_ = false;
    ++releases_;
    for (auto* gate : gates_) {
        gate->cancel();
    }
}

Token FakeTokenSource::make_token(const std::string& resource, std::int64_t expires_on,
                                  std::string access_token) const {
    const std::int64_t now = clock_.unix_seconds();
    return Token{.access_token = std::move(access_token),
                 .refresh_token = "",
                 .token_type = "Bearer",
                 .resource = resource,
                 .expires_on = expires_on,
                 .not_before = now,
                 .expires_in = expires_on - now};
}

}  // namespace nmid::test
