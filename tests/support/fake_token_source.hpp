#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "nmid/core/clock.hpp"
#include "nmid/token/token_source.hpp"

namespace nmid::test {

/// Scripted TokenSource. Replies are taken in call order: pushed replies first, then the
/// default (a Bearer token valid for `default_lifetime` from the clock's wall time when the
/// reply is produced, resource echoed, access_token "token-<call number>").
/// hold() suspends every fetch() (new and running) until release(); a per-call duration
/// makes fetch() wait on the clock first. Cancellation of the awaiting coroutine ends a
/// suspended fetch() with Errc::cancelled. The deadline argument is only recorded.
/// Single-threaded: use from the executor the fetches run on.
class FakeTokenSource final : public TokenSource {
public:
    explicit FakeTokenSource(Clock& clock) : clock_(clock) {}

    boost::asio::awaitable<FetchResult> fetch(const TokenRequest& request,
                                              SteadyTime deadline) override;

    /// The next unscripted call gets `reply`, after waiting `duration` on the clock.
    void push(FetchResult reply, std::chrono::nanoseconds duration = {});
    /// Shorthand: push a failure.
    void push_error(Errc code, int status = 0, std::chrono::seconds retry_after = {});
    /// Duration of calls that use the default reply.
    void set_duration(std::chrono::nanoseconds d) { duration_ = d; }
    void set_default_lifetime(std::chrono::seconds lifetime) { lifetime_ = lifetime; }

    void hold() { held_ = true; }
    /// Lets every held call finish (even if hold() is called again before they resume);
    /// later calls are not held until the next hold().
    void release();

    /// A failure as a TokenSource reports it.
    [[nodiscard]] static FetchError error(Errc code, int status = 0,
                                          std::chrono::seconds retry_after = {});
    /// A token as upstream would return it.
    [[nodiscard]] Token make_token(const std::string& resource, std::int64_t expires_on,
                                   std::string access_token) const;

    [[nodiscard]] int calls() const { return calls_; }
    [[nodiscard]] int in_flight() const { return in_flight_; }
    [[nodiscard]] int max_in_flight() const { return max_in_flight_; }
    [[nodiscard]] int cancelled() const { return cancelled_; }
    [[nodiscard]] std::size_t pending_replies() const { return replies_.size(); }
    [[nodiscard]] const TokenRequest& last_request() const { return requests_.back(); }
    [[nodiscard]] const std::vector<TokenRequest>& requests() const { return requests_; }
    [[nodiscard]] const std::vector<SteadyTime>& deadlines() const { return deadlines_; }
    /// Steady time at which each call started.
    [[nodiscard]] const std::vector<SteadyTime>& started() const { return started_; }

private:
    struct Scripted {
        FetchResult reply;
        std::chrono::nanoseconds duration;
    };

    Clock& clock_;
    std::deque<Scripted> replies_;
    std::chrono::nanoseconds duration_{0};
    std::chrono::seconds lifetime_{3600};
    bool held_ = false;
    std::uint64_t releases_ = 0;
    std::vector<boost::asio::steady_timer*> gates_;
    int calls_ = 0;
    int in_flight_ = 0;
    int max_in_flight_ = 0;
    int cancelled_ = 0;
    std::vector<TokenRequest> requests_;
    std::vector<SteadyTime> deadlines_;
    std::vector<SteadyTime> started_;
};

}  // namespace nmid::test
