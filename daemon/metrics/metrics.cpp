#include "nmid/metrics/metrics.hpp"

#include <prometheus/check_names.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "callback_collectable.hpp"
#include "fast_histogram.hpp"
#include "label_set.hpp"
#include "series_labels.hpp"

namespace nmid::metrics {
namespace {

using prometheus::Counter;
using prometheus::Histogram;
using namespace detail;  // series_labels.hpp

constexpr std::string_view kTokenRoute = "token";
constexpr std::string_view kHostTokenRoute = "host_token";
constexpr std::string_view kTokenPath = "/metadata/identity/oauth2/token";
constexpr std::string_view kHostTokenPath = "/host/token";

// Small sets chosen by callers (routes, cache outcomes, operation types): a bound guards
// against a caller passing request data by mistake.
constexpr std::size_t kMaxFixedSetValues = 16;

const Histogram::BucketBoundaries& micro_buckets() {
    static const Histogram::BucketBoundaries buckets{50e-6,  100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3,
                                                     5e-3,   10e-3,  25e-3,  50e-3,  100e-3, 250e-3,
                                                     500e-3, 1,      2.5,    5,      10};
    return buckets;
}

// NMI's views (pkg/metrics/metrics.go), so existing dashboards keep their bucket edges.
const Histogram::BucketBoundaries& nmi_operation_buckets() {
    static const Histogram::BucketBoundaries buckets{0.5, 1,  2,  3,  4,  5,  10, 15, 20,
                                                     25,  30, 40, 50, 60, 70, 80, 90, 100};
    return buckets;
}

const Histogram::BucketBoundaries& nmi_imds_buckets() {
    static const Histogram::BucketBoundaries buckets{0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6,
                                                     0.7,  0.8,  0.9,  1,   2,   3,   4,   5,   10};
    return buckets;
}

double seconds(std::chrono::nanoseconds latency) {
    return std::chrono::duration<double>(latency).count();
}

// Tells the Metrics objects apart in the per-thread memo below (addresses can be reused).
std::atomic<std::uint64_t> g_next_metrics_id{1};

/// The series of the last request recorded on this thread and the label values that chose
/// them: a repeated request (one pod asking for one resource) skips the lock, the interning
/// and the lookups. Series are never removed, so the pointers stay valid while their Metrics
/// lives; `owner` keeps another Metrics from using them.
struct RequestSeriesMemo {
    std::uint64_t owner = 0;
    int status = 0;
    std::string route;
    std::string cache;
    std::string pod_namespace;
    std::string resource;
    Counter* counter = nullptr;
    FastHistogramFamily::Series* duration = nullptr;
    FastHistogramFamily::Series* nmi = nullptr;

    [[nodiscard]] bool matches(std::uint64_t id, std::string_view r, int s, std::string_view c,
                               std::string_view ns, std::string_view res) const {
        return owner == id && status == s && route == r && cache == c && pod_namespace == ns &&
               resource == res;
    }
};

RequestSeriesMemo& request_series_memo() {
    thread_local RequestSeriesMemo memo;
    return memo;
}

}  // namespace

struct Metrics::Impl {
    const std::uint64_t id = g_next_metrics_id.fetch_add(1, std::memory_order_relaxed);
    prometheus::Registry registry;

    prometheus::Family<Counter>& requests_total =
        prometheus::BuildCounter()
            .Name("nmid_requests_total")
            .Help("Requests answered, by route, HTTP status and token cache outcome.")
            .Register(registry);
    FastHistogramFamily request_duration{
        "nmid_request_duration_seconds",
        "Time from reading a request to writing its response, by route."};
    prometheus::Family<Counter>& upstream_total =
        prometheus::BuildCounter()
            .Name("nmid_upstream_requests_total")
            .Help("Token requests sent to IMDS or AAD, by source, outcome and trigger.")
            .Register(registry);
    prometheus::Family<Histogram>& upstream_duration =
        prometheus::BuildHistogram()
            .Name("nmid_upstream_request_duration_seconds")
            .Help("Duration of token requests sent to IMDS or AAD, by source.")
            .Register(registry);
    FastHistogramFamily nmi_operations{"aadpodidentity_nmi_operations_duration_seconds",
                                       "Duration in seconds for nmi operations"};
    prometheus::Family<Histogram>& imds_duration =
        prometheus::BuildHistogram()
            .Name("aadpodidentity_imds_operations_duration_seconds")
            .Help("Duration in seconds of imds token operations")
            .Register(registry);
    prometheus::Family<Counter>& imds_errors =
        prometheus::BuildCounter()
            .Name("aadpodidentity_imds_operations_errors_count")
            .Help("Total number of errors in imds token operations")
            .Register(registry);
    prometheus::Family<Counter>& kubernetes_errors =
        prometheus::BuildCounter()
            .Name("aadpodidentity_kubernetes_api_operations_errors_count")
            .Help("Total number of errors in kubernetes api operations")
            .Register(registry);

    CallbackCollectable callbacks;
    // Every exported family name, so add_gauge/add_counter cannot shadow one.
    std::set<std::string, std::less<>> names{
        "nmid_requests_total",
        "nmid_request_duration_seconds",
        "nmid_upstream_requests_total",
        "nmid_upstream_request_duration_seconds",
        "aadpodidentity_nmi_operations_duration_seconds",
        "aadpodidentity_imds_operations_duration_seconds",
        "aadpodidentity_imds_operations_errors_count",
        "aadpodidentity_kubernetes_api_operations_errors_count",
    };

    // Guards everything below: the label interning tables and the series caches. The series
    // themselves are thread-safe and never removed, so pointers are used after unlocking.
    std::mutex mutex;
    LabelSet routes{kMaxFixedSetValues};
    LabelSet cache_outcomes{kMaxFixedSetValues};
    LabelSet namespaces{kMaxRequestLabelValues};
    LabelSet resources{kMaxRequestLabelValues};
    LabelSet kubernetes_operations{kMaxFixedSetValues};
    std::uint32_t token_route = routes.intern(kTokenRoute);
    std::uint32_t host_token_route = routes.intern(kHostTokenRoute);

    std::unordered_map<std::uint32_t, Counter*> request_counters;
    std::vector<FastHistogramFamily::Series*> route_durations;  // by route index
    std::unordered_map<std::uint64_t, FastHistogramFamily::Series*> nmi_series;
    std::array<Counter*, kSourceLabels.size() * kUpstreamStatusLabels.size() * 2> upstream{};
    std::array<Histogram*, kSourceLabels.size()> upstream_durations{};
    std::array<Histogram*, kNmiOperationLabels.size()> imds_durations{};
    std::array<Counter*, kNmiOperationLabels.size()> imds_error_counters{};
    std::unordered_map<std::uint32_t, Counter*> kubernetes_error_counters;

    Impl() {
        request_counters.reserve(256);
        nmi_series.reserve(1024);
        // NMI's error counters exist at zero from the start, so increase() sees the first error.
        for (std::size_t i = 0; i + 1 < kNmiOperationLabels.size(); ++i) {
            imds_error_counters[i] =
                &imds_errors.Add({{"operation_type", std::string{kNmiOperationLabels[i]}}});
        }
        for (std::string_view op : {"get_pod_list", "get_secret"}) {
            kubernetes_error_counters.emplace(
                kubernetes_operations.intern(op),
                &kubernetes_errors.Add({{"operation_type", std::string{op}}}));
        }
    }

    Counter& request_counter(std::uint32_t route, std::uint32_t status, std::uint32_t cache) {
        const std::uint32_t key = (route << 24U) | (cache << 16U) | status;
        auto it = request_counters.find(key);
        if (it == request_counters.end()) {
            Counter& counter = requests_total.Add({{"route", routes.value(route)},
                                                   {"status", status_label(status)},
                                                   {"cache", cache_outcomes.value(cache)}});
            it = request_counters.emplace(key, &counter).first;
        }
        return *it->second;
    }

    FastHistogramFamily::Series& route_duration(std::uint32_t route) {
        if (route >= route_durations.size()) {
            route_durations.resize(route + 1, nullptr);
        }
        FastHistogramFamily::Series*& slot = route_durations[route];
        if (slot == nullptr) {
            slot = &request_duration.add({{"route", routes.value(route)}}, micro_buckets());
        }
        return *slot;
    }

    FastHistogramFamily::Series& nmi_series_for(bool host, std::uint32_t status, std::uint32_t ns,
                                                std::uint32_t resource) {
        const std::uint64_t key = (std::uint64_t{host} << 48U) | (std::uint64_t{status} << 32U) |
                                  (std::uint64_t{ns} << 16U) | resource;
        auto it = nmi_series.find(key);
        if (it == nmi_series.end()) {
            FastHistogramFamily::Series& histogram = nmi_operations.add(
                {{"operation_type", std::string{host ? kHostTokenPath : kTokenPath}},
                 {"status_code", status_label(status)},
                 {"namespace", namespaces.value(ns)},
                 {"resource", resources.value(resource)}},
                nmi_operation_buckets());
            it = nmi_series.emplace(key, &histogram).first;
        }
        return *it->second;
    }
};

Metrics::Metrics() : impl_{std::make_unique<Impl>()} {}

Metrics::~Metrics() = default;

void Metrics::record_request(std::string_view route, int status, std::string_view cache_outcome,
                             std::string_view pod_namespace, std::string_view resource,
                             std::chrono::nanoseconds latency) {
    RequestSeriesMemo& memo = request_series_memo();
    if (!memo.matches(impl_->id, route, status, cache_outcome, pod_namespace, resource)) {
        memo.owner = 0;  // matches nothing until filled in whole
        std::lock_guard lock{impl_->mutex};
        const std::uint32_t route_index = impl_->routes.intern(route);
        const std::uint32_t status_index = status_key(status);
        const std::uint32_t cache_index =
            impl_->cache_outcomes.intern(cache_outcome.empty() ? "none" : cache_outcome);
        memo.counter = &impl_->request_counter(route_index, status_index, cache_index);
        memo.duration = &impl_->route_duration(route_index);
        memo.nmi = nullptr;
        const bool host = route_index == impl_->host_token_route;
        if (host || route_index == impl_->token_route) {
            memo.nmi =
                &impl_->nmi_series_for(host, status_index, impl_->namespaces.intern(pod_namespace),
                                       impl_->resources.intern(resource));
        }
        memo.owner = impl_->id;
        memo.status = status;
        memo.route.assign(route);
        memo.cache.assign(cache_outcome);
        memo.pod_namespace.assign(pod_namespace);
        memo.resource.assign(resource);
    }
    const double took = seconds(latency);
    memo.counter->Increment();
    memo.duration->observe(took);
    if (memo.nmi != nullptr) {
        memo.nmi->observe(took);
    }
}

void Metrics::record_upstream(std::string_view source, std::string_view nmi_operation_type,
                              int status, bool ok, bool background,
                              std::chrono::nanoseconds latency) {
    const std::size_t source_index = index_in(kSourceLabels, source);
    const auto status_index = static_cast<std::size_t>(classify_upstream(status, ok));
    const std::size_t trigger_index = background ? 1 : 0;
    const std::size_t operation_index = index_in(kNmiOperationLabels, nmi_operation_type);
    Counter* counter = nullptr;
    Histogram* duration = nullptr;
    Histogram* imds_duration = nullptr;
    Counter* imds_error = nullptr;
    {
        std::lock_guard lock{impl_->mutex};
        Counter*& counter_slot =
            impl_->upstream[(source_index * kUpstreamStatusLabels.size() + status_index) * 2 +
                            trigger_index];
        if (counter_slot == nullptr) {
            counter_slot = &impl_->upstream_total.Add(
                {{"source", std::string{kSourceLabels[source_index]}},
                 {"status", std::string{kUpstreamStatusLabels[status_index]}},
                 {"trigger", std::string{kTriggerLabels[trigger_index]}}});
        }
        counter = counter_slot;
        Histogram*& duration_slot = impl_->upstream_durations[source_index];
        if (duration_slot == nullptr) {
            duration_slot = &impl_->upstream_duration.Add(
                {{"source", std::string{kSourceLabels[source_index]}}}, micro_buckets());
        }
        duration = duration_slot;
        const prometheus::Labels operation{
            {"operation_type", std::string{kNmiOperationLabels[operation_index]}}};
        if (ok) {
            Histogram*& slot = impl_->imds_durations[operation_index];
            if (slot == nullptr) {
                slot = &impl_->imds_duration.Add(operation, nmi_imds_buckets());
            }
            imds_duration = slot;
        } else {
            Counter*& slot = impl_->imds_error_counters[operation_index];
            if (slot == nullptr) {
                slot = &impl_->imds_errors.Add(operation);
            }
            imds_error = slot;
        }
    }
    const double took = seconds(latency);
    counter->Increment();
    duration->Observe(took);
    if (imds_duration != nullptr) {
        imds_duration->Observe(took);
    }
    if (imds_error != nullptr) {
        imds_error->Increment();
    }
}

void Metrics::count_kubernetes_api_error(std::string_view operation_type) {
    Counter* counter = nullptr;
    {
        std::lock_guard lock{impl_->mutex};
        const std::uint32_t index = impl_->kubernetes_operations.intern(operation_type);
        auto it = impl_->kubernetes_error_counters.find(index);
        if (it == impl_->kubernetes_error_counters.end()) {
            Counter& added = impl_->kubernetes_errors.Add(
                {{"operation_type", impl_->kubernetes_operations.value(index)}});
            it = impl_->kubernetes_error_counters.emplace(index, &added).first;
        }
        counter = it->second;
    }
    counter->Increment();
}

void Metrics::add_gauge(std::string name, std::string help, std::function<double()> read) {
    claim_name(impl_->names, impl_->mutex, name, read != nullptr);
    impl_->callbacks.add(std::move(name), std::move(help), prometheus::MetricType::Gauge,
                         std::move(read));
}

void Metrics::add_counter(std::string name, std::string help, std::function<double()> read) {
    claim_name(impl_->names, impl_->mutex, name, read != nullptr);
    impl_->callbacks.add(std::move(name), std::move(help), prometheus::MetricType::Counter,
                         std::move(read));
}

void Metrics::add_labeled_gauge(std::string name, std::string help, std::string label,
                                LabeledRead read) {
    claim_name(impl_->names, impl_->mutex, name, read != nullptr, label);
    impl_->callbacks.add_labeled(std::move(name), std::move(help), prometheus::MetricType::Gauge,
                                 std::move(label), std::move(read));
}

void Metrics::add_labeled_counter(std::string name, std::string help, std::string label,
                                  LabeledRead read) {
    claim_name(impl_->names, impl_->mutex, name, read != nullptr, label);
    impl_->callbacks.add_labeled(std::move(name), std::move(help), prometheus::MetricType::Counter,
                                 std::move(label), std::move(read));
}

std::string Metrics::render() const {
    // prometheus-cpp 1.0's Registry only holds its own families, so our collectables are
    // collected next to it rather than registered with it.
    std::vector<prometheus::MetricFamily> families = impl_->registry.Collect();
    const std::array<const prometheus::Collectable*, 3> ours{
        &impl_->request_duration, &impl_->nmi_operations, &impl_->callbacks};
    for (const prometheus::Collectable* collectable : ours) {
        std::vector<prometheus::MetricFamily> more = collectable->Collect();
        families.insert(families.end(), std::make_move_iterator(more.begin()),
                        std::make_move_iterator(more.end()));
    }
    return prometheus::TextSerializer{}.Serialize(families);
}

}  // namespace nmid::metrics
