#include "nmid/pods/kubelet_pod_source.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <tuple>
#include <utility>

namespace nmid {
namespace {

namespace asio = boost::asio;

constexpr std::size_t kBodyExcerpt = 200;

// The start of an error body for a log line (the kubelet answers 401/403 in plain text),
// control characters blanked.
std::string excerpt(std::string_view body) {
    std::string out{body.substr(0, std::min(body.size(), kBodyExcerpt))};
    for (char& c : out) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            c = ' ';
        }
    }
    if (body.size() > kBodyExcerpt) {
        out += "...";
    }
    return out;
}

}  // namespace

KubeletPodSource::KubeletPodSource(kube::KubeletClient& client,
                                   asio::any_io_executor parse_executor, Clock& clock)
    : client_(client), parse_executor_(std::move(parse_executor)), clock_(clock) {}

Result<std::shared_ptr<const PodList>> KubeletPodSource::failed(boost::system::error_code code,
                                                                std::string why) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    // One line per distinct failure: polling a broken kubelet every second must not flood.
    if (why != last_failure_) {
        spdlog::warn("kubelet /pods: {}", why);
        last_failure_ = std::move(why);
    }
    return code;
}

asio::awaitable<Result<std::shared_ptr<const PodList>>> KubeletPodSource::list(
    SteadyTime deadline) {
    auto response = co_await client_.get_pods(deadline);
    if (!response) {
        last_status_.store(0, std::memory_order_relaxed);
        const auto code = response.error();
        if (code == Errc::cancelled) {
            co_return code;  // shutdown: nothing to report
        }
        co_return failed(code, code.message());
    }
    last_status_.store(response->status, std::memory_order_relaxed);
    if (response->status != 200) {
        std::string why =
            "HTTP " + std::to_string(response->status) + ": " + excerpt(response->body);
        if (response->status == 401 || response->status == 403) {
            why +=
                " (nmid's service account needs get on nodes/pods; kubelets before 1.33 check "
                "nodes/proxy only: deploy/optional/nodes-proxy-rbac.yaml)";
        }
        co_return failed(Errc::pod_source_failed, std::move(why));
    }
    if (clock_.steady_now() >= deadline) {
        co_return failed(Errc::timeout, "response arrived after the read's deadline");
    }
    Decoded decoded = co_await asio::co_spawn(parse_executor_, decode(std::move(response->body)),
                                              asio::use_awaitable);
    if (!decoded.list) {
        co_return failed(Errc::parse_error, "parse error: " + decoded.detail);
    }
    reads_.fetch_add(1, std::memory_order_relaxed);
    if (decoded.unchanged) {
        unchanged_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!last_failure_.empty()) {
        spdlog::info("kubelet /pods: read again after: {}", last_failure_);
        last_failure_.clear();
    }
    co_return std::move(decoded.list);
}

asio::awaitable<KubeletPodSource::Decoded> KubeletPodSource::decode(std::string body) {
    Decoded out;
    if (last_ && body == last_body_) {
        out.list = last_;
        out.unchanged = true;
        co_return out;
    }
    auto parsed = parse_pod_list(body, &out.detail);
    if (!parsed) {
        out.list = parsed.error();
        co_return out;
    }
    // The kubelet lists pods in map order, which changes from one call to the next: equal
    // content in another order is still "unchanged" for the index.
    std::sort(parsed->pods.begin(), parsed->pods.end(), [](const PodInfo& a, const PodInfo& b) {
        return std::tie(a.namespace_name, a.name, a.uid) <
               std::tie(b.namespace_name, b.name, b.uid);
    });
    last_body_ = std::move(body);
    if (last_ && last_->pods == parsed->pods) {
        out.unchanged = true;
    } else {
        last_ = std::make_shared<const PodList>(std::move(*parsed));
    }
    out.list = last_;
    co_return out;
}

KubeletPodSourceStats KubeletPodSource::stats() const {
    KubeletPodSourceStats s;
    s.reads = reads_.load(std::memory_order_relaxed);
    s.unchanged = unchanged_.load(std::memory_order_relaxed);
    s.failures = failures_.load(std::memory_order_relaxed);
    s.last_status = last_status_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace nmid
