#pragma once

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <vector>

#include "nmid/pods/pod_source.hpp"

namespace nmid::test {

/// A PodSource the test drives: what list() returns, when it fails, and when it completes.
/// Single-threaded (the test's io_context).
class FakePodSource final : public PodSource {
public:
    /// list() calls that begin from now on return this list (the same pointer until the
    /// next set()); a call already in progress returns what was set when it began.
    void set(PodList list);
    /// The next list() call to complete fails with `code` (once).
    void fail_next(Errc code);
    /// From now on list() suspends until release().
    void hold();
    /// Stops holding and lets every suspended list() complete (on the next poll).
    void release();

    /// list() calls started.
    [[nodiscard]] int calls() const { return calls_; }
    /// list() calls currently suspended by hold().
    [[nodiscard]] std::size_t held() const { return held_.size(); }
    /// Deadline passed to the latest list() call.
    [[nodiscard]] SteadyTime last_deadline() const { return last_deadline_; }
    /// The pointer list() currently returns.
    [[nodiscard]] std::shared_ptr<const PodList> current() const { return list_; }

    /// Errors: the one set by fail_next(), Errc::cancelled when cancelled while held.
    boost::asio::awaitable<Result<std::shared_ptr<const PodList>>> list(
        SteadyTime deadline) override;

private:
    std::shared_ptr<const PodList> list_ = std::make_shared<const PodList>();
    std::optional<Errc> fail_next_;
    bool holding_ = false;
    std::vector<boost::asio::steady_timer*> held_;
    int calls_ = 0;
    SteadyTime last_deadline_{};
};

/// A Running pod with one IP, for index tests.
PodInfo make_pod(std::string namespace_name, std::string name, std::string ip,
                 std::string phase = "Running");

}  // namespace nmid::test
