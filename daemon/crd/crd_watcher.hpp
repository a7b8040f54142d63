#pragma once

// List+watch of one aadpodidentity resource (client-go's Reflector) and the state the
// watchers share with the publisher of one ApiServerCrdSource::run(). Private to the crd
// module.

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "nmid/crd/api_server_source.hpp"
#include "object_store.hpp"

namespace nmid {

namespace crd_detail {

inline bool is_cancelled(const boost::asio::cancellation_state& state) {
    return state.cancelled() != boost::asio::cancellation_type::none;
}

}  // namespace crd_detail

/// State shared by the watchers and the publisher of one run(); lives in run()'s frame and
/// is touched on its strand only.
struct ApiServerCrdSource::Shared {
    explicit Shared(const boost::asio::any_io_executor& executor)
        : wake{executor, boost::asio::steady_timer::time_point::max()} {}

    void mark_dirty() {
        dirty = true;
        wake.cancel();  // the publisher re-checks `dirty` before every wait
    }

    [[nodiscard]] bool all_synced() const {
        for (std::size_t i = 0; i < kCrdResourceCount; ++i) {
            if (stores[i] != nullptr && !synced[i]) {
                return false;
            }
        }
        return true;
    }

    std::array<std::unique_ptr<crd_detail::ObjectStore>, kCrdResourceCount> stores{};
    std::array<bool, kCrdResourceCount> synced{};
    bool dirty = false;
    bool published = false;
    boost::asio::steady_timer wake;  ///< never expires; cancelled to wake the publisher
    Publish publish;
};

/// List+watch of one resource (client-go's Reflector).
class ApiServerCrdSource::Watcher {
public:
    Watcher(ApiServerCrdSource& source, Shared& shared, CrdResource resource);

    /// Lists, then watches from the list's resourceVersion, until cancelled: 410 relists, a
    /// stream that ends re-watches, failures back off. Runs on the source's strand.
    boost::asio::awaitable<void> run();

private:
    enum class Outcome { ended, gone, failed };
    enum class ListFrom { cache, not_older, latest };

    struct StreamState {
        std::size_t applied = 0;  ///< events and bookmarks
        bool gone = false;
        bool failed = false;
    };

    template <class F>
    void update_stats(F&& f) {
        const std::lock_guard lock{source_.stats_mutex_};
        f(source_.stats_.resources[index_]);
    }

    [[nodiscard]] std::string with_selector(std::string query) const;
    boost::asio::awaitable<bool> list();
    boost::asio::awaitable<Outcome> watch();
    bool on_line(std::string_view raw, StreamState& state);
    boost::asio::awaitable<void> backoff();
    void fail(const std::string& what);

    ApiServerCrdSource& source_;
    Shared& shared_;
    CrdResource resource_;
    std::size_t index_;
    crd_detail::ObjectStore& store_;
    std::string collection_;
    std::string selector_;  ///< "labelSelector=..." or ""
    std::string rv_;
    bool need_list_ = true;
    ListFrom list_from_ = ListFrom::cache;
    unsigned attempt_ = 0;      ///< consecutive failures, for the backoff
    unsigned gone_streak_ = 0;  ///< 410s in a row without any event in between
    std::uint64_t watches_ = 0;
};

}  // namespace nmid
