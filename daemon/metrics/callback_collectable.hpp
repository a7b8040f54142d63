#pragma once

// Families read at scrape time (Metrics::add_gauge, add_counter and their labelled forms):
// components keep plain stats and a callback loads them when /metrics is rendered.

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "nmid/metrics/metrics.hpp"

namespace nmid::metrics {

/// Checks `name` (and `label` when not empty) and records it in `names` under `mutex`; throws
/// std::invalid_argument for an invalid or already registered name, an invalid label or a
/// missing read function (`has_read` false): start-up bugs.
void claim_name(std::set<std::string, std::less<>>& names, std::mutex& mutex,
                const std::string& name, bool has_read, const std::string& label = {});

class CallbackCollectable final : public prometheus::Collectable {
public:
    void add(std::string name, std::string help, prometheus::MetricType type,
             std::function<double()> read);
    void add_labeled(std::string name, std::string help, prometheus::MetricType type,
                     std::string label, Metrics::LabeledRead read);
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    struct Entry {
        std::string name;
        std::string help;
        prometheus::MetricType type;
        std::function<double()> read;  ///< one unlabelled series, or
        std::string label;             ///< the label of every series `read_labeled` returns
        Metrics::LabeledRead read_labeled;
    };
    mutable std::mutex mutex_;  // guards entries_ (add_* may race with a scrape)
    std::vector<Entry> entries_;
};

}  // namespace nmid::metrics
