#pragma once

// The threads of the kube harness: FakeThread (an io_context of its own for the fakes) and
// PumpedChild (a child process whose output is drained while the test does not read it).

#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/base64.hpp"
#include "support/fake_aad.hpp"
#include "support/fake_api_server.hpp"
#include "support/fake_kubelet.hpp"
#include "support/http_get.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

namespace nmid::test {

using namespace std::chrono_literals;

/// An io_context on a thread of its own, for fakes that are not thread-safe.
class FakeThread {
public:
    FakeThread() : thread_([this] { loop(); }) {}
    ~FakeThread() { stop(); }
    FakeThread(const FakeThread&) = delete;
    FakeThread& operator=(const FakeThread&) = delete;

    [[nodiscard]] boost::asio::io_context& ioc() { return ioc_; }

    /// Runs `f` on the fake thread and returns its result (its exception rethrown here).
    template <class F>
    auto run(F&& f) -> std::invoke_result_t<F&> {
        using R = std::invoke_result_t<F&>;
        std::packaged_task<R()> task([&f]() -> R { return f(); });
        auto result = task.get_future();
        boost::asio::post(ioc_, [&task] { task(); });
        return result.get();
    }

    /// Waits until `pred` holds. `pred` runs on the fake thread, now and after every handler
    /// the fakes run (their state changes only there), so nothing polls. False after `timeout`.
    bool wait_until(std::function<bool()> pred, std::chrono::milliseconds timeout) {
        auto w = std::make_shared<Waiter>();
        w->pred = std::move(pred);
        auto fired = w->done.get_future();
        boost::asio::post(ioc_, [this, w] { waiters_.push_back(w); });
        if (fired.wait_for(timeout) == std::future_status::ready) {
            return true;
        }
        run([this, &w] { waiters_.remove(w); });
        return fired.wait_for(0s) == std::future_status::ready;
    }

    void stop() {
        if (!thread_.joinable()) {
            return;
        }
        boost::asio::post(ioc_, [this] { guard_.reset(); });
        stopping_ = true;
        ioc_.stop();
        thread_.join();
    }

private:
    struct Waiter {
        std::function<bool()> pred;
        std::promise<void> done;
    };

    void loop() {
        while (!stopping_ && ioc_.run_one() > 0) {
            for (auto it = waiters_.begin(); it != waiters_.end();) {
                if ((*it)->pred()) {
                    (*it)->done.set_value();
                    it = waiters_.erase(it);
                } else {
                    ++it;
                }
            }
        }
    }

    boost::asio::io_context ioc_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
        ioc_.get_executor()};
    std::list<std::shared_ptr<Waiter>> waiters_;  ///< fake thread only
    std::atomic<bool> stopping_{false};
    std::thread thread_;  ///< last: starts once the rest is built
};

/// A ChildProcess whose output is drained by a thread of its own while the test does not
/// read it, so a chatty child (nmid logs every request) never blocks on a full pipe.
class PumpedChild {
public:
    PumpedChild(const std::string& path, const std::vector<std::string>& args)
        : child_(path, args), pump_([this] { loop(); }) {}
    ~PumpedChild() {
        {
            const std::lock_guard lock{mutex_};
            stop_ = true;
        }
        cv_.notify_all();
        pump_.join();
    }
    PumpedChild(const PumpedChild&) = delete;
    PumpedChild& operator=(const PumpedChild&) = delete;

    [[nodiscard]] pid_t pid() const { return child_.pid(); }
    std::optional<std::string> wait_for_line(const std::string& needle,
                                             std::chrono::milliseconds timeout) {
        return locked([&] { return child_.wait_for_line(needle, timeout); });
    }
    bool wait_for_text(const std::string& needle, std::chrono::milliseconds timeout) {
        return locked([&] { return child_.wait_for_text(needle, timeout); });
    }
    int signal_and_wait(int signo, std::chrono::milliseconds timeout) {
        return locked([&] {
            const int status = child_.signal_and_wait(signo, timeout);
            child_.wait_for_text(kNever, 200ms);  // what is left in the pipe
            return status;
        });
    }
    /// Everything read so far (after reading what is available now).
    std::string output() {
        return locked([&] {
            child_.wait_for_text(kNever, 1ms);
            return child_.output();
        });
    }

private:
    static constexpr const char* kNever = "\x01\x02never\x03";

    template <class F>
    auto locked(F&& f) -> std::invoke_result_t<F&> {
        ++wanted_;
        std::unique_lock lock{mutex_};
        --wanted_;
        auto result = f();
        lock.unlock();
        cv_.notify_all();
        return result;
    }

    void loop() {
        std::unique_lock lock{mutex_};
        for (;;) {
            cv_.wait(lock, [this] { return stop_ || wanted_.load() == 0; });
            if (stop_) {
                return;
            }
            const auto start = std::chrono::steady_clock::now();
            child_.wait_for_text(kNever, 20ms);
            if (std::chrono::steady_clock::now() - start < 10ms) {
                return;  // end of output: the child exited
            }
            // Let a waiting test thread in before reading again.
            lock.unlock();
            std::this_thread::yield();
            lock.lock();
        }
    }

    ChildProcess child_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::atomic<int> wanted_{0};
    bool stop_ = false;
    std::thread pump_;  ///< last
};

}  // namespace nmid::test
