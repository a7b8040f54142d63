#pragma once

#include <prometheus/collectable.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace nmid::metrics {

using prometheus::Histogram;

/// A histogram family for the series every request observes. prometheus-cpp's Histogram takes
/// a mutex and runs two compare-exchange loops per observation; here an observation is a
/// binary search and two relaxed atomic adds. A scrape reads the buckets one by one, so it may
/// see an observation in the sum but not yet in a bucket (never a count that disagrees with
/// the buckets, which it is computed from).
class FastHistogramFamily final : public prometheus::Collectable {
public:
    class Series {
    public:
        Series(const Histogram::BucketBoundaries& bounds,
               std::vector<prometheus::ClientMetric::Label> labels)
            : bounds_(&bounds), labels_(std::move(labels)), counts_(bounds.size() + 1) {}

        void observe(double value) noexcept {
            // As prometheus-cpp: the first bucket whose upper bound is >= value, else +Inf.
            const auto bucket = static_cast<std::size_t>(
                std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin());
            counts_[bucket].fetch_add(1, std::memory_order_relaxed);
            sum_.fetch_add(value, std::memory_order_relaxed);
        }

        [[nodiscard]] prometheus::ClientMetric collect() const {
            prometheus::ClientMetric metric;
            metric.label = labels_;
            std::uint64_t cumulative = 0;
            metric.histogram.bucket.reserve(counts_.size());
            for (std::size_t i = 0; i < counts_.size(); ++i) {
                cumulative += counts_[i].load(std::memory_order_relaxed);
                metric.histogram.bucket.push_back(
                    {cumulative, i < bounds_->size() ? (*bounds_)[i]
                                                     : std::numeric_limits<double>::infinity()});
            }
            metric.histogram.sample_count = cumulative;
            metric.histogram.sample_sum = sum_.load(std::memory_order_relaxed);
            return metric;
        }

    private:
        const Histogram::BucketBoundaries* bounds_;
        std::vector<prometheus::ClientMetric::Label> labels_;
        std::vector<std::atomic<std::uint64_t>> counts_;  ///< per bucket, the last is +Inf
        std::atomic<double> sum_{0};
    };

    FastHistogramFamily(std::string name, std::string help)
        : name_(std::move(name)), help_(std::move(help)) {}

    /// A new series; the caller never adds the same labels twice. The reference stays valid
    /// while the family lives.
    Series& add(std::vector<prometheus::ClientMetric::Label> labels,
                const Histogram::BucketBoundaries& bounds) {
        std::lock_guard lock{mutex_};
        return *series_.emplace_back(std::make_unique<Series>(bounds, std::move(labels)));
    }

    std::vector<prometheus::MetricFamily> Collect() const override {
        prometheus::MetricFamily family{name_, help_, prometheus::MetricType::Histogram, {}};
        std::lock_guard lock{mutex_};
        family.metric.reserve(series_.size());
        for (const auto& series : series_) {
            family.metric.push_back(series->collect());
        }
        std::vector<prometheus::MetricFamily> families;
        if (!family.metric.empty()) {  // as prometheus-cpp: no samples, no family
            families.push_back(std::move(family));
        }
        return families;
    }

private:
    std::string name_;
    std::string help_;
    mutable std::mutex mutex_;  // guards series_ (add may race with a scrape)
    std::vector<std::unique_ptr<Series>> series_;
};

}  // namespace nmid::metrics
