#pragma once

// Prometheus metrics of nmid: NMI-compatible series (namespace `aadpodidentity`, names and label
// keys exactly as NMI exports them) and nmid's own `nmid_*` series, whose buckets start at 50 µs
// and whose label values come from bounded sets. Metric names and label keys are a public API
// (house rule R15): change them only together with the README.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nmid::metrics {

/// Every label value taken from request data (namespace, resource) or from a caller-supplied
/// small set (route, cache outcome, source, operation type) is bounded: past its limit of
/// distinct values, further values are recorded as this.
inline constexpr std::string_view kOtherLabel = "other";
/// Distinct `namespace` and `resource` label values kept before recording "other".
inline constexpr std::size_t kMaxRequestLabelValues = 64;

/// Owns a prometheus::Registry and the series nmid records.
///
/// Thread safety: every method may be called from any thread. The record methods take one
/// short, uncontended mutex to find the cached series (created on first use), then update
/// prometheus-cpp's atomic counters and histograms; they never block on I/O or on render().
class Metrics {
public:
    Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    /// One answered request (any route), recorded once at the end of the request.
    ///
    /// Records `nmid_requests_total{route,status,cache}` and
    /// `nmid_request_duration_seconds{route}` (buckets 50e-6 … 10 s). For routes "token" and
    /// "host_token" also NMI's `aadpodidentity_nmi_operations_duration_seconds{operation_type,
    /// status_code,namespace,resource}` with NMI's buckets (0.5 … 100 s), where operation_type
    /// is the canonical path ("/metadata/identity/oauth2/token", "/host/token") rather than
    /// NMI's raw path. `route` and `cache_outcome` come from small fixed sets (at most 16
    /// distinct values each; "" cache outcome is recorded as "none"); `pod_namespace` and
    /// `resource` keep their first kMaxRequestLabelValues distinct values each, then "other".
    /// Status codes outside 100..599 are recorded as "other".
    /// Steady state (labels seen before): no allocation, no Family::Add.
    void record_request(std::string_view route, int status, std::string_view cache_outcome,
                        std::string_view pod_namespace, std::string_view resource,
                        std::chrono::nanoseconds latency);

    /// One upstream token attempt (IMDS or AAD), foreground or background refresh.
    ///
    /// Records `nmid_upstream_requests_total{source,status,trigger}` where source is "imds",
    /// "aad" or "aad-federated" (workload identity; anything else: "other"), status is "200" (ok),
    /// "429", "4xx", "5xx" or "error" (no HTTP status, or a failed attempt whose status was 2xx,
    /// e.g. an unparsable body) and trigger is "request" or "refresh" (`background`), and
    /// `nmid_upstream_request_duration_seconds{source}` (buckets 50e-6 … 10 s). NMI-compatible:
    /// on success `aadpodidentity_imds_operations_duration_seconds{operation_type}` (buckets
    /// 0.01 … 10 s), on failure `aadpodidentity_imds_operations_errors_count{operation_type}`;
    /// `nmi_operation_type` is one of "adal_token_msi", "adal_token_msi_userassignedid",
    /// "adal_token" (anything else: "other").
    void record_upstream(std::string_view source, std::string_view nmi_operation_type, int status,
                         bool ok, bool background, std::chrono::nanoseconds latency);

    /// NMI's `aadpodidentity_kubernetes_api_operations_errors_count{operation_type}`;
    /// operation_type "get_pod_list" or "get_secret" (at most 16 distinct values, then "other").
    void count_kubernetes_api_error(std::string_view operation_type);

    /// Registers a gauge read at scrape time (pull model: components keep plain stats, e.g.
    /// atomics, and `read` loads them). `read` runs on the thread calling render(), must be
    /// cheap and thread-safe, and must not call back into this object. Throws
    /// std::invalid_argument for an invalid or already registered name (a start-up bug).
    void add_gauge(std::string name, std::string help, std::function<double()> read);
    /// Same as add_gauge for a counter whose source is monotonic; `name` is exported as given
    /// (by convention it ends in "_total").
    void add_counter(std::string name, std::string help, std::function<double()> read);

    /// (label value, value) pairs of one family, read at scrape time; the values of `label`
    /// must be few and bounded (an enum's names, say), as `read` returns them all each scrape.
    using LabeledRead = std::function<std::vector<std::pair<std::string, double>>()>;
    /// A gauge family with one label, e.g. `nmid_identities_rejected{reason}`; same rules as
    /// add_gauge, and std::invalid_argument for an invalid label name.
    void add_labeled_gauge(std::string name, std::string help, std::string label, LabeledRead read);
    /// A counter family with one label, e.g. `nmid_pod_limited_total{reason}`.
    void add_labeled_counter(std::string name, std::string help, std::string label,
                             LabeledRead read);

    /// Prometheus text exposition format 0.0.4 of every series and every callback.
    /// Content-Type: "text/plain; version=0.0.4; charset=utf-8".
    [[nodiscard]] std::string render() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nmid::metrics
