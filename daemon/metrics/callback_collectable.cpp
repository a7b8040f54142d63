#include "callback_collectable.hpp"

#include <prometheus/check_names.h>

#include <stdexcept>

namespace nmid::metrics {
namespace {

prometheus::ClientMetric metric_of(prometheus::MetricType type, double value) {
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter) {
        metric.counter.value = value;
    } else {
        metric.gauge.value = value;
    }
    return metric;
}

}  // namespace

void claim_name(std::set<std::string, std::less<>>& names, std::mutex& mutex,
                const std::string& name, bool has_read, const std::string& label) {
    if (!prometheus::CheckMetricName(name)) {
        throw std::invalid_argument("invalid metric name: " + name);
    }
    if (!label.empty() && !prometheus::CheckLabelName(label)) {
        throw std::invalid_argument("invalid label name for " + name + ": " + label);
    }
    if (!has_read) {
        throw std::invalid_argument("metric " + name + " has no read function");
    }
    std::lock_guard lock{mutex};
    if (!names.insert(name).second) {
        throw std::invalid_argument("metric registered twice: " + name);
    }
}

void CallbackCollectable::add(std::string name, std::string help, prometheus::MetricType type,
                              std::function<double()> read) {
    std::lock_guard lock{mutex_};
    entries_.push_back({std::move(name), std::move(help), type, std::move(read), {}, {}});
}

void CallbackCollectable::add_labeled(std::string name, std::string help,
                                      prometheus::MetricType type, std::string label,
                                      Metrics::LabeledRead read) {
    std::lock_guard lock{mutex_};
    entries_.push_back(
        {std::move(name), std::move(help), type, {}, std::move(label), std::move(read)});
}

std::vector<prometheus::MetricFamily> CallbackCollectable::Collect() const {
    std::lock_guard lock{mutex_};
    std::vector<prometheus::MetricFamily> families;
    families.reserve(entries_.size());
    for (const auto& entry : entries_) {
        prometheus::MetricFamily family{entry.name, entry.help, entry.type, {}};
        if (entry.read) {
            family.metric.push_back(metric_of(entry.type, entry.read()));
        } else {
            for (auto& [value_label, value] : entry.read_labeled()) {
                prometheus::ClientMetric metric = metric_of(entry.type, value);
                metric.label.push_back({entry.label, std::move(value_label)});
                family.metric.push_back(std::move(metric));
            }
        }
        families.push_back(std::move(family));
    }
    return families;
}

}  // namespace nmid::metrics
